//! Digests, quiet hours and flood control, as the store applies them. In the transaction
//! that queues a batch's notifications, each one to a destination that is in its owner's
//! quiet hours, gathers digests, or has had its flood limit of immediate notifications in
//! the current window is stored `collected` instead of `pending`: out of the queue, never
//! dropped. Each destination with collected notifications has one open `digest` row, due
//! when the quiet hours end, the flood window ends, or the digest's own trigger fires. A
//! claimed digest carries what was collected up to that moment; sent, those are marked sent
//! with it (dead, dead with it, visible and retryable one by one), in the transaction that
//! records it. What was collected meanwhile gets a digest of its own a minute later.
//!
//! Webhooks are never collected: machines act on each event, in order.

use std::collections::HashMap;
use std::sync::Arc;

use tidings_rules::delivery::{DeliveryPolicy, Schedule, TimeOfDay};

use crate::StoredMessage;

/// A digest's notifications listed in detail; the rest are counted.
pub const DIGEST_ITEMS: i64 = 5_000;

/// How long after a digest the notifications collected while it was being sent wait.
pub(crate) const FOLLOW_UP_MS: i64 = 60_000;

/// Why notifications were collected for a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestReason {
    /// The destination gathers digests.
    Digest,
    /// They arrived in the owner's quiet hours.
    Quiet,
    /// More arrived in the flood window than the destination takes at once.
    Flood,
}

/// One notification in a digest: its message and the filters (id, name) that matched.
pub type DigestItem = (Arc<StoredMessage>, Vec<(i64, String)>);

/// What a claimed digest carries: the notifications collected up to its claim.
#[derive(Debug, Clone)]
pub struct DigestContents {
    /// Why they were collected.
    pub reason: DigestReason,
    /// How many it stands for.
    pub total: i64,
    /// The newest [`DIGEST_ITEMS`] of them, oldest first, with the filters that matched.
    pub items: Vec<DigestItem>,
}

/// A destination's rules and its owner's schedule, as the planner reads them.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub(crate) ordered: bool,
    pub(crate) policy: DeliveryPolicy,
    pub(crate) schedule: Schedule,
}

impl Rules {
    /// From the stored columns; settings that cannot be read are logged and the defaults
    /// used: one person's bad row never stops the queue.
    pub(crate) fn from_row(
        id: i64,
        ordered: bool,
        delivery: Option<&str>,
        time_zone: &str,
        quiet: (Option<i64>, Option<i64>),
    ) -> Rules {
        let policy = match delivery {
            None | Some("") => crate::preferences::destinations::default_delivery(),
            Some(json) => DeliveryPolicy::from_stored(Some(json)).unwrap_or_else(|e| {
                tracing::warn!(destination = id, %e, "unreadable delivery settings; using the defaults");
                crate::preferences::destinations::default_delivery()
            }),
        };
        let quiet = match quiet {
            (Some(from), Some(to)) => minutes(from).zip(minutes(to)),
            _ => None,
        };
        let schedule = Schedule::new(time_zone, quiet).unwrap_or_else(|e| {
            tracing::warn!(destination = id, %e, "unreadable schedule; using UTC, no quiet hours");
            Schedule::default()
        });
        Rules {
            ordered,
            policy,
            schedule,
        }
    }
}

fn minutes(stored: i64) -> Option<TimeOfDay> {
    let m = u16::try_from(stored).ok().filter(|m| *m < 24 * 60)?;
    TimeOfDay::parse(&format!("{}:{:02}", m / 60, m % 60)).ok()
}

/// A destination's flood window: when it started, and how many went at once in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) start: i64,
    pub(crate) sent: i64,
}

/// What becomes of one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Queued to go now (`pending`, or `held` behind a webhook's oldest).
    Now,
    /// Collected, for a digest due then (`None`: when enough are waiting).
    Collect(DigestReason, Option<i64>),
}

/// Decides one notification to a destination with `rules` at `now`, counting it in the
/// destination's flood `window` (created, or started afresh once the last one ended).
pub(crate) fn plan(rules: &Rules, window: &mut Option<Window>, now: i64) -> Plan {
    if rules.ordered {
        return Plan::Now;
    }
    if let Some(end) = rules.schedule.quiet_until(now) {
        return Plan::Collect(DigestReason::Quiet, Some(end));
    }
    match rules.policy {
        DeliveryPolicy::Digest { .. } => Plan::Collect(
            DigestReason::Digest,
            rules.policy.digest_due(now, &rules.schedule),
        ),
        DeliveryPolicy::Immediate { flood_max: 0, .. } => Plan::Now,
        DeliveryPolicy::Immediate {
            flood_max,
            flood_window_minutes,
        } => {
            let length = i64::from(flood_window_minutes) * 60_000;
            let current = match window {
                Some(w) if now < w.start + length => w,
                _ => window.insert(Window {
                    start: now,
                    sent: 0,
                }),
            };
            if current.sent < i64::from(flood_max) {
                current.sent += 1;
                Plan::Now
            } else {
                Plan::Collect(DigestReason::Flood, Some(current.start + length))
            }
        }
    }
}

/// The digests a batch asks for: per destination, the first reason and the earliest due
/// time of what it collected.
pub(crate) fn wanted(plans: &[(i64, Plan)]) -> HashMap<i64, (DigestReason, Option<i64>)> {
    let mut wanted: HashMap<i64, (DigestReason, Option<i64>)> = HashMap::new();
    for &(destination, plan) in plans {
        if let Plan::Collect(reason, due) = plan {
            wanted
                .entry(destination)
                .and_modify(|(_, at)| {
                    *at = match (*at, due) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    }
                })
                .or_insert((reason, due));
        }
    }
    wanted
}

/// Inside transaction `$tx`, after a batch's notifications are queued: gives each
/// destination in `$wanted` (from [`wanted`]) an open digest row due at the earliest time
/// asked, or now for a digest whose item count is reached, moving an open one earlier if
/// need be (one being sent is left alone: what it does not hold gets a digest of its own
/// when it is recorded).
macro_rules! schedule_digests {
    ($store:expr, $tx:ident, $wanted:expr, $rules:expr, $now:expr) => {{
        use $crate::pipeline::messages::{placeholders, value_rows, CHUNK_ROWS};
        let now: i64 = $now;
        let mut wanted = $wanted;
        // Digests that go out after so many: count what is waiting.
        let counted: Vec<(i64, i64)> = wanted
            .keys()
            .filter_map(|id| match $rules.get(id).map(|r| &r.policy) {
                Some(tidings_rules::delivery::DeliveryPolicy::Digest {
                    max_items: Some(n),
                    ..
                }) => Some((*id, i64::from(*n))),
                _ => None,
            })
            .collect();
        for chunk in counted.chunks(CHUNK_ROWS) {
            let sql = format!(
                "SELECT destination_id, COUNT(*) FROM outbox WHERE status = 'collected' \
                 AND destination_id IN ({}) GROUP BY destination_id",
                placeholders(1, chunk.len())
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
            for (id, _) in chunk {
                query = query.bind(id);
            }
            for (id, waiting) in query.fetch_all(&mut *$tx).await? {
                let enough = chunk.iter().any(|(d, n)| *d == id && waiting >= *n);
                if let (true, Some(entry)) = (enough, wanted.get_mut(&id)) {
                    entry.1 = Some(now);
                }
            }
        }
        let due: Vec<(i64, $crate::pipeline::digests::DigestReason, i64)> = wanted
            .iter()
            .filter_map(|(id, (reason, at))| Some((*id, *reason, (*at)?)))
            .collect();
        let mut open = std::collections::HashMap::new();
        let ids: Vec<i64> = due.iter().map(|(id, ..)| *id).collect();
        for chunk in ids.chunks(CHUNK_ROWS) {
            let sql = format!(
                "SELECT id, destination_id, status, next_attempt_at FROM outbox \
                 WHERE kind = 'digest' AND status IN ('pending', 'sending') \
                 AND destination_id IN ({})",
                placeholders(1, chunk.len())
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query_as::<_, (i64, i64, String, i64)>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for (row, destination, status, at) in query.fetch_all(&mut *$tx).await? {
                open.insert(destination, (row, status, at));
            }
        }
        let earlier = $store.sql("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2");
        let mut new = Vec::new();
        for (destination, reason, at) in due {
            match open.get(&destination) {
                Some((row, status, current)) if status == "pending" && at < *current => {
                    sqlx::query(&earlier)
                        .bind(at)
                        .bind(row)
                        .execute(&mut *$tx)
                        .await?;
                }
                Some(_) => {}
                None => new.push((destination, reason, at)),
            }
        }
        for chunk in new.chunks(CHUNK_ROWS) {
            let values = value_rows(
                chunk.len(),
                1,
                "('digest', NULL, ?, '[]', ?, ?, 'pending', ?, ?, 0)",
            );
            let sql = format!(
                "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at, ordered) \
                 VALUES {values} ON CONFLICT DO NOTHING"
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query(&sql);
            for (destination, reason, at) in chunk {
                query = query
                    .bind(destination)
                    .bind(
                        $crate::pipeline::outbox::OutboxPayload::DigestV1 {
                            reason: *reason,
                            up_to: None,
                        }
                        .to_json()?,
                    )
                    .bind($crate::pipeline::outbox::new_uid())
                    .bind(at)
                    .bind(now);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use schedule_digests;

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> TimeOfDay {
        TimeOfDay::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rules(policy: DeliveryPolicy) -> Rules {
        Rules {
            ordered: false,
            policy,
            schedule: Schedule::default(),
        }
    }

    #[test]
    fn a_flood_goes_at_once_up_to_its_limit_then_into_a_summary() {
        let r = rules(DeliveryPolicy::Immediate {
            flood_max: 3,
            flood_window_minutes: 10,
        });
        let mut window = None;
        let now = 1_000_000;
        let plans: Vec<Plan> = (0..5).map(|i| plan(&r, &mut window, now + i)).collect();
        let end = Some(now + 600_000);
        assert_eq!(
            plans,
            [
                Plan::Now,
                Plan::Now,
                Plan::Now,
                Plan::Collect(DigestReason::Flood, end),
                Plan::Collect(DigestReason::Flood, end)
            ]
        );
        // A new window starts once the last one ended.
        assert_eq!(plan(&r, &mut window, now + 600_000), Plan::Now);
        assert_eq!(
            window,
            Some(Window {
                start: now + 600_000,
                sent: 1
            })
        );
        let unlimited = rules(DeliveryPolicy::Immediate {
            flood_max: 0,
            flood_window_minutes: 10,
        });
        assert!((0..100).all(|_| plan(&unlimited, &mut None, now) == Plan::Now));
    }

    #[test]
    fn webhooks_are_never_collected_and_quiet_hours_come_first() {
        let mut ordered = rules(DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: None,
            max_items: None,
        });
        ordered.ordered = true;
        assert_eq!(plan(&ordered, &mut None, 0), Plan::Now);
        let quiet = Rules {
            ordered: false,
            policy: DeliveryPolicy::default(),
            schedule: Schedule::new("UTC", Some((time("00:00"), time("06:00"))))
                .unwrap_or_default(),
        };
        // 1970-01-01T01:00Z is quiet until 06:00Z.
        assert_eq!(
            plan(&quiet, &mut None, 3_600_000),
            Plan::Collect(DigestReason::Quiet, Some(6 * 3_600_000))
        );
        let wanted = wanted(&[
            (1, Plan::Now),
            (2, Plan::Collect(DigestReason::Flood, Some(50))),
            (2, Plan::Collect(DigestReason::Flood, Some(40))),
            (3, Plan::Collect(DigestReason::Digest, None)),
        ]);
        assert_eq!(wanted.get(&2), Some(&(DigestReason::Flood, Some(40))));
        assert_eq!(wanted.get(&3), Some(&(DigestReason::Digest, None)));
        assert!(!wanted.contains_key(&1));
    }
}
