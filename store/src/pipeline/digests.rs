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
//! A filter can gather its matches into a digest of its own (its `delivery`): a
//! notification every matching filter of which is such a filter is collected for the
//! digest of the first of them (per destination and filter: `digest_filter`), on that
//! filter's schedule, outside the destination's flood window. Quiet hours come first: what
//! arrives then waits for the destination's own digest at their end.
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
    /// The filter (id, name) whose own digest this is; none for the destination's.
    pub filter: Option<(i64, String)>,
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
    /// Collected, for a digest due then (`None`: when enough are waiting), of the
    /// destination's own (0) or of a filter's (its id).
    Collect(DigestReason, Option<i64>, i64),
}

impl Plan {
    /// The digest it is collected for: the filter's id, or 0 for the destination's.
    pub(crate) fn digest_filter(self) -> i64 {
        match self {
            Plan::Now => 0,
            Plan::Collect(.., filter) => filter,
        }
    }
}

/// Decides one notification to a destination with `rules` at `now`, counting it in the
/// destination's flood `window` (created, or started afresh once the last one ended).
/// `digest` is the filter whose own digest it goes to, when every filter that matched
/// gathers one (see [`crate::Notification::digest`]).
pub(crate) fn plan(
    rules: &Rules,
    digest: Option<(i64, &DeliveryPolicy)>,
    window: &mut Option<Window>,
    now: i64,
) -> Plan {
    if rules.ordered {
        return Plan::Now;
    }
    if let Some(end) = rules.schedule.quiet_until(now) {
        return Plan::Collect(DigestReason::Quiet, Some(end), 0);
    }
    if let Some((filter, policy)) = digest {
        return Plan::Collect(
            DigestReason::Digest,
            policy.digest_due(now, &rules.schedule),
            filter,
        );
    }
    match rules.policy {
        DeliveryPolicy::Digest { .. } => Plan::Collect(
            DigestReason::Digest,
            rules.policy.digest_due(now, &rules.schedule),
            0,
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
                Plan::Collect(DigestReason::Flood, Some(current.start + length), 0)
            }
        }
    }
}

/// A digest's key: its destination, and the filter whose digest it is (0: the
/// destination's own).
pub(crate) type DigestKey = (i64, i64);

/// The digests a batch asks for: per destination and filter, the first reason and the
/// earliest due time of what it collected.
pub(crate) fn wanted(plans: &[(i64, Plan)]) -> HashMap<DigestKey, (DigestReason, Option<i64>)> {
    let mut wanted: HashMap<DigestKey, (DigestReason, Option<i64>)> = HashMap::new();
    for &(destination, plan) in plans {
        if let Plan::Collect(reason, due, filter) = plan {
            wanted
                .entry((destination, filter))
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
/// destination and filter in `$wanted` (from [`wanted`]) an open digest row due at the
/// earliest time asked, or now for a digest whose item count is reached, moving an open one
/// earlier if need be (one being sent is left alone: what it does not hold gets a digest of
/// its own when it is recorded). `$rules` are the destinations' rules and `$filters` the
/// digest filters' settings, by id.
macro_rules! schedule_digests {
    ($store:expr, $tx:ident, $wanted:expr, $rules:expr, $filters:expr, $now:expr) => {{
        use $crate::pipeline::messages::{placeholders, value_rows, CHUNK_ROWS};
        let now: i64 = $now;
        let mut wanted = $wanted;
        // Digests that go out after so many: count what is waiting.
        let counted: Vec<((i64, i64), i64)> = wanted
            .keys()
            .filter_map(|&(destination, filter)| {
                let policy = if filter == 0 {
                    $rules.get(&destination).map(|r| &r.policy)
                } else {
                    $filters.get(&filter)
                };
                match policy {
                    Some(tidings_rules::delivery::DeliveryPolicy::Digest {
                        max_items: Some(n),
                        ..
                    }) => Some(((destination, filter), i64::from(*n))),
                    _ => None,
                }
            })
            .collect();
        for chunk in counted.chunks(CHUNK_ROWS) {
            let mut ids: Vec<i64> = chunk.iter().map(|((d, _), _)| *d).collect();
            ids.sort_unstable();
            ids.dedup();
            let sql = format!(
                "SELECT destination_id, digest_filter, COUNT(*) FROM outbox \
                 WHERE status = 'collected' AND destination_id IN ({}) \
                 GROUP BY destination_id, digest_filter",
                placeholders(1, ids.len())
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
            for id in &ids {
                query = query.bind(id);
            }
            for (id, filter, waiting) in query.fetch_all(&mut *$tx).await? {
                let key = (id, filter);
                let enough = chunk.iter().any(|(k, n)| *k == key && waiting >= *n);
                if let (true, Some(entry)) = (enough, wanted.get_mut(&key)) {
                    entry.1 = Some(now);
                }
            }
        }
        let due: Vec<((i64, i64), $crate::pipeline::digests::DigestReason, i64)> = wanted
            .iter()
            .filter_map(|(key, (reason, at))| Some((*key, *reason, (*at)?)))
            .collect();
        let mut open = std::collections::HashMap::new();
        let mut ids: Vec<i64> = due.iter().map(|((id, _), ..)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        for chunk in ids.chunks(CHUNK_ROWS) {
            let sql = format!(
                "SELECT id, destination_id, digest_filter, status, next_attempt_at FROM outbox \
                 WHERE kind = 'digest' AND status IN ('pending', 'sending') \
                 AND destination_id IN ({})",
                placeholders(1, chunk.len())
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query_as::<_, (i64, i64, i64, String, i64)>(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            for (row, destination, filter, status, at) in query.fetch_all(&mut *$tx).await? {
                open.insert((destination, filter), (row, status, at));
            }
        }
        let earlier = $store.sql("UPDATE outbox SET next_attempt_at = $1 WHERE id = $2");
        let mut new = Vec::new();
        for (key, reason, at) in due {
            match open.get(&key) {
                Some((row, status, current)) if status == "pending" && at < *current => {
                    sqlx::query(&earlier)
                        .bind(at)
                        .bind(row)
                        .execute(&mut *$tx)
                        .await?;
                }
                Some(_) => {}
                None => new.push((key, reason, at)),
            }
        }
        for chunk in new.chunks(CHUNK_ROWS) {
            let values = value_rows(
                chunk.len(),
                1,
                "('digest', NULL, ?, '[]', ?, ?, 'pending', ?, ?, 0, ?)",
            );
            let sql = format!(
                "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at, ordered, digest_filter) \
                 VALUES {values} ON CONFLICT DO NOTHING"
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query(&sql);
            for ((destination, filter), reason, at) in chunk {
                query = query
                    .bind(destination)
                    .bind(
                        $crate::pipeline::outbox::OutboxPayload::DigestV1 {
                            reason: *reason,
                            up_to: None,
                            filter: (*filter != 0).then_some(*filter),
                        }
                        .to_json()?,
                    )
                    .bind($crate::pipeline::outbox::new_uid())
                    .bind(at)
                    .bind(now)
                    .bind(filter);
            }
            query.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use schedule_digests;

/// Inside transaction `$tx`, when delivery settings change: what is collected for the
/// digests `$filter_sql` picks (a condition on `outbox` with one parameter, `$1`, bound to
/// `$bind`) goes out in one digest within [`FOLLOW_UP_MS`] (an open one is moved that
/// early, or one is queued), and the new settings apply from then on. Nothing collected
/// under settings that no longer exist (a digest after 500 notifications, switched to at
/// once) waits for a trigger that will not come.
macro_rules! release_collected {
    ($store:expr, $tx:ident, $filter_sql:expr, $bind:expr, $now:expr) => {{
        let at: i64 = $now + $crate::pipeline::digests::FOLLOW_UP_MS;
        let waiting = format!(
            "SELECT DISTINCT destination_id, digest_filter FROM outbox \
             WHERE status = 'collected' AND {}",
            $filter_sql
        );
        let waiting = $store.sql(&waiting);
        let pairs: Vec<(i64, i64)> = sqlx::query_as(&waiting)
            .bind($bind)
            .fetch_all(&mut *$tx)
            .await?;
        let sooner = $store.sql(
            "UPDATE outbox SET next_attempt_at = $1 WHERE kind = 'digest' AND status = 'pending' \
             AND destination_id = $2 AND digest_filter = $3 AND next_attempt_at > $1",
        );
        let queue = $store.sql(
            "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, \
             next_attempt_at, created_at, ordered, digest_filter) \
             VALUES ('digest', NULL, $1, '[]', $2, $3, 'pending', $4, $5, 0, $6) ON CONFLICT DO NOTHING",
        );
        for (destination, filter) in pairs {
            sqlx::query(&sooner)
                .bind(at)
                .bind(destination)
                .bind(filter)
                .execute(&mut *$tx)
                .await?;
            let payload = $crate::pipeline::outbox::OutboxPayload::DigestV1 {
                reason: $crate::pipeline::digests::DigestReason::Digest,
                up_to: None,
                filter: (filter != 0).then_some(filter),
            }
            .to_json()?;
            sqlx::query(&queue)
                .bind(destination)
                .bind(payload)
                .bind($crate::pipeline::outbox::new_uid())
                .bind(at)
                .bind($now)
                .bind(filter)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(crate) use release_collected;

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
        let plans: Vec<Plan> = (0..5)
            .map(|i| plan(&r, None, &mut window, now + i))
            .collect();
        let end = Some(now + 600_000);
        assert_eq!(
            plans,
            [
                Plan::Now,
                Plan::Now,
                Plan::Now,
                Plan::Collect(DigestReason::Flood, end, 0),
                Plan::Collect(DigestReason::Flood, end, 0)
            ]
        );
        // A new window starts once the last one ended.
        assert_eq!(plan(&r, None, &mut window, now + 600_000), Plan::Now);
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
        assert!((0..100).all(|_| plan(&unlimited, None, &mut None, now) == Plan::Now));
    }

    #[test]
    fn a_filter_digest_stays_out_of_the_flood_window_and_yields_to_quiet_hours() {
        let r = rules(DeliveryPolicy::Immediate {
            flood_max: 1,
            flood_window_minutes: 10,
        });
        let hourly = DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: None,
            max_items: None,
        };
        let mut window = None;
        assert_eq!(
            plan(&r, Some((7, &hourly)), &mut window, 0),
            Plan::Collect(DigestReason::Digest, Some(3_600_000), 7)
        );
        assert_eq!(window, None, "not counted against the flood limit");
        assert_eq!(plan(&r, None, &mut window, 1), Plan::Now);
        let quiet = Rules {
            schedule: Schedule::new("UTC", Some((time("00:00"), time("06:00"))))
                .unwrap_or_default(),
            ..r
        };
        assert_eq!(
            plan(&quiet, Some((7, &hourly)), &mut None, 3_600_000),
            Plan::Collect(DigestReason::Quiet, Some(6 * 3_600_000), 0)
        );
    }

    #[test]
    fn webhooks_are_never_collected_and_quiet_hours_come_first() {
        let mut ordered = rules(DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: None,
            max_items: None,
        });
        ordered.ordered = true;
        assert_eq!(plan(&ordered, None, &mut None, 0), Plan::Now);
        let quiet = Rules {
            ordered: false,
            policy: DeliveryPolicy::default(),
            schedule: Schedule::new("UTC", Some((time("00:00"), time("06:00"))))
                .unwrap_or_default(),
        };
        // 1970-01-01T01:00Z is quiet until 06:00Z.
        assert_eq!(
            plan(&quiet, None, &mut None, 3_600_000),
            Plan::Collect(DigestReason::Quiet, Some(6 * 3_600_000), 0)
        );
        let wanted = wanted(&[
            (1, Plan::Now),
            (2, Plan::Collect(DigestReason::Flood, Some(50), 0)),
            (2, Plan::Collect(DigestReason::Flood, Some(40), 0)),
            (3, Plan::Collect(DigestReason::Digest, None, 0)),
            (3, Plan::Collect(DigestReason::Digest, Some(70), 9)),
        ]);
        assert_eq!(wanted.get(&(2, 0)), Some(&(DigestReason::Flood, Some(40))));
        assert_eq!(wanted.get(&(3, 0)), Some(&(DigestReason::Digest, None)));
        // A filter's own digest is apart from the destination's.
        assert_eq!(wanted.get(&(3, 9)), Some(&(DigestReason::Digest, Some(70))));
        assert!(!wanted.contains_key(&(1, 0)));
    }
}
