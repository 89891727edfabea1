//! When notifications go out, in pure code: a destination's [`DeliveryPolicy`] (at once,
//! with a flood limit, or gathered into digests) and its owner's [`Schedule`] (time zone
//! and quiet hours) decide, for each notification the matcher queues, whether it is sent
//! now or collected for a digest, and when that digest is due. The store applies these
//! decisions in the transaction that queues the notifications.
//!
//! ```
//! use tidings_rules::delivery::{DeliveryPolicy, Schedule};
//!
//! let policy: DeliveryPolicy = serde_json::from_str(r#"{"mode":"digest","daily_at":"08:30"}"#)
//!     .expect("valid");
//! let schedule = Schedule::new("Europe/Paris", None).expect("a known zone");
//! // 2026-12-02 10:00 UTC is 11:00 in Paris: the next 08:30 there is tomorrow, 07:30 UTC.
//! let now = 1_796_205_600_000;
//! assert_eq!(policy.digest_due(now, &schedule), Some(now + (21 * 60 + 30) * 60_000));
//! ```

use std::fmt;

use chrono::{DateTime, Duration, LocalResult, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct DeliveryError {
    /// The setting at fault.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn refused(field: &'static str, reason: impl Into<String>) -> DeliveryError {
    DeliveryError {
        field,
        reason: reason.into(),
    }
}

/// A time of day, `HH:MM`, as minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// `HH:MM` (or `H:MM`), 00:00 to 23:59.
    pub fn parse(text: &str) -> Result<TimeOfDay, String> {
        let bad = || format!("{text:?} is not a time of day like 08:30");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 || text.trim().len() > 5 {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    fn naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(u32::from(self.0 / 60), u32::from(self.0 % 60), 0)
            .unwrap_or(NaiveTime::MIN)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl serde::Serialize for TimeOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TimeOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeOfDay::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How a destination's notifications go out, stored as JSON with the mode in the tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum DeliveryPolicy {
    /// Each as it is matched, at most `flood_max` in `flood_window_minutes`: the rest of a
    /// flood rolls into one summary sent when the window ends. Never dropped.
    Immediate {
        /// Notifications sent at once per window (0: no limit).
        #[serde(default = "default_flood_max")]
        flood_max: u32,
        /// The window, in minutes.
        #[serde(default = "default_flood_window")]
        flood_window_minutes: u32,
    },
    /// Gathered into digests: one every `every_minutes`, or daily at `daily_at` in the
    /// owner's time zone, or once `max_items` are waiting, whichever comes first.
    Digest {
        /// A digest this long after the first notification it holds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        every_minutes: Option<u32>,
        /// A digest every day at this time, in the owner's time zone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        daily_at: Option<TimeOfDay>,
        /// A digest as soon as this many are waiting.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_items: Option<u32>,
    },
}

fn default_flood_max() -> u32 {
    DeliveryPolicy::DEFAULT_FLOOD_MAX
}

fn default_flood_window() -> u32 {
    DeliveryPolicy::DEFAULT_FLOOD_WINDOW_MINUTES
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy::Immediate {
            flood_max: Self::DEFAULT_FLOOD_MAX,
            flood_window_minutes: Self::DEFAULT_FLOOD_WINDOW_MINUTES,
        }
    }
}

impl DeliveryPolicy {
    /// Notifications a destination gets at once per window unless its owner says
    /// otherwise: a mass rebuild becomes a summary, not ten thousand mails.
    pub const DEFAULT_FLOOD_MAX: u32 = 20;
    /// The flood window unless its owner says otherwise, in minutes.
    pub const DEFAULT_FLOOD_WINDOW_MINUTES: u32 = 10;

    /// Checks the numbers: a digest needs at least one of its three triggers, and every
    /// number is in a sane range.
    pub fn check(&self) -> Result<(), DeliveryError> {
        match self {
            DeliveryPolicy::Immediate {
                flood_max,
                flood_window_minutes,
            } => {
                if *flood_max > 100_000 {
                    return Err(refused("flood_max", "at most 100000 (0: no limit)"));
                }
                if !(1..=10_080).contains(flood_window_minutes) {
                    return Err(refused(
                        "flood_window_minutes",
                        "from 1 minute to a week (10080)",
                    ));
                }
            }
            DeliveryPolicy::Digest {
                every_minutes,
                daily_at,
                max_items,
            } => {
                if every_minutes.is_none() && daily_at.is_none() && max_items.is_none() {
                    return Err(refused(
                        "digest",
                        "say when a digest goes out: every N minutes, daily at a time, or \
                         after N notifications",
                    ));
                }
                if every_minutes.is_some_and(|m| !(5..=10_080).contains(&m)) {
                    return Err(refused("every_minutes", "from 5 minutes to a week (10080)"));
                }
                if max_items.is_some_and(|n| !(1..=100_000).contains(&n)) {
                    return Err(refused("max_items", "from 1 to 100000"));
                }
            }
        }
        Ok(())
    }

    /// Reads stored settings (`None`: the default).
    pub fn from_stored(json: Option<&str>) -> Result<DeliveryPolicy, String> {
        match json {
            None | Some("") => Ok(DeliveryPolicy::default()),
            Some(json) => serde_json::from_str(json).map_err(|e| e.to_string()),
        }
    }

    /// When a digest for notifications collected from `now` on is due (the first of its
    /// time triggers), or `None` for an immediate destination or a digest that waits for
    /// its item count alone.
    pub fn digest_due(&self, now: i64, schedule: &Schedule) -> Option<i64> {
        let DeliveryPolicy::Digest {
            every_minutes,
            daily_at,
            ..
        } = self
        else {
            return None;
        };
        let every = every_minutes.map(|m| now + i64::from(m) * 60_000);
        let daily = daily_at.map(|at| schedule.next(now, at));
        match (every, daily) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// One line for pages and the CLI: "at once (at most 20 in 10 min)".
    pub fn describe(&self) -> String {
        match self {
            DeliveryPolicy::Immediate { flood_max: 0, .. } => "at once, no flood limit".to_string(),
            DeliveryPolicy::Immediate {
                flood_max,
                flood_window_minutes,
            } => format!(
                "at once, at most {flood_max} in {flood_window_minutes} min (the rest in a summary)"
            ),
            DeliveryPolicy::Digest {
                every_minutes,
                daily_at,
                max_items,
            } => {
                let mut when = Vec::new();
                if let Some(m) = every_minutes {
                    when.push(if m % 60 == 0 {
                        format!("every {} h", m / 60)
                    } else {
                        format!("every {m} min")
                    });
                }
                if let Some(at) = daily_at {
                    when.push(format!("daily at {at}"));
                }
                if let Some(n) = max_items {
                    when.push(format!("after {n} notifications"));
                }
                format!("digest: {}", when.join(", or "))
            }
        }
    }
}

/// A person's time zone and quiet hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    tz: Tz,
    quiet: Option<(TimeOfDay, TimeOfDay)>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            tz: Tz::UTC,
            quiet: None,
        }
    }
}

impl Schedule {
    /// `zone` an IANA name (`Europe/Paris`, `UTC`); `quiet` from one time to another (they
    /// may span midnight: 22:00 to 07:00). Equal times are refused.
    pub fn new(
        zone: &str,
        quiet: Option<(TimeOfDay, TimeOfDay)>,
    ) -> Result<Schedule, DeliveryError> {
        let tz: Tz = zone.trim().parse().map_err(|_| {
            refused(
                "time_zone",
                format!("{zone:?} is not a time zone name like Europe/Paris or UTC"),
            )
        })?;
        if quiet.is_some_and(|(from, to)| from == to) {
            return Err(refused(
                "quiet_hours",
                "the start and the end are the same time",
            ));
        }
        Ok(Schedule { tz, quiet })
    }

    /// The time zone's name.
    pub fn time_zone(&self) -> &'static str {
        self.tz.name()
    }

    /// The quiet hours, if set.
    pub fn quiet(&self) -> Option<(TimeOfDay, TimeOfDay)> {
        self.quiet
    }

    fn local(&self, ms: i64) -> DateTime<Tz> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        utc.with_timezone(&self.tz)
    }

    /// The first moment at or after `after` (ms) when the local clock shows `at` (a time
    /// skipped by a clock change counts as the moment after the gap).
    pub fn next(&self, after: i64, at: TimeOfDay) -> i64 {
        let local = self.local(after);
        for day in 0..3 {
            let date = local.date_naive() + Duration::days(day);
            let wanted = date.and_time(at.naive());
            let moment = match self.tz.from_local_datetime(&wanted) {
                LocalResult::Single(t) => t,
                LocalResult::Ambiguous(first, _) => first,
                // In a gap (spring forward): an hour later exists.
                LocalResult::None => {
                    match self.tz.from_local_datetime(&(wanted + Duration::hours(1))) {
                        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t,
                        LocalResult::None => continue,
                    }
                }
            };
            let ms = moment.timestamp_millis();
            if ms > after {
                return ms;
            }
        }
        after + 86_400_000
    }

    /// If `now` is within the quiet hours, when they end.
    pub fn quiet_until(&self, now: i64) -> Option<i64> {
        let (from, to) = self.quiet?;
        let local = self.local(now);
        let minute = u16::try_from(
            local
                .time()
                .signed_duration_since(NaiveTime::MIN)
                .num_minutes(),
        )
        .unwrap_or(0);
        let inside = if from < to {
            (from.0..to.0).contains(&minute)
        } else {
            minute >= from.0 || minute < to.0
        };
        inside.then(|| self.next(now, to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02T10:00:00Z.
    const NOW: i64 = 1_796_205_600_000;
    const MIN: i64 = 60_000;

    fn at(text: &str) -> TimeOfDay {
        TimeOfDay::parse(text).unwrap_or(TimeOfDay(0))
    }

    #[test]
    fn times_of_day_parse_strictly() {
        assert_eq!(TimeOfDay::parse("08:30"), Ok(TimeOfDay(510)));
        assert_eq!(
            TimeOfDay::parse("8:05").map(|t| t.to_string()),
            Ok("08:05".into())
        );
        for bad in ["24:00", "12:60", "noon", "12", "-1:00", "012:000"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policies_read_back_and_refuse_nonsense() {
        assert_eq!(
            DeliveryPolicy::from_stored(None),
            Ok(DeliveryPolicy::default())
        );
        let digest = DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: Some(at("08:00")),
            max_items: Some(50),
        };
        let json = serde_json::to_string(&digest).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"mode":"digest","every_minutes":60,"daily_at":"08:00","max_items":50}"#
        );
        assert_eq!(DeliveryPolicy::from_stored(Some(&json)), Ok(digest.clone()));
        assert_eq!(digest.check(), Ok(()));
        assert_eq!(
            digest.describe(),
            "digest: every 1 h, or daily at 08:00, or after 50 notifications"
        );
        let never = DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: None,
            max_items: None,
        };
        assert_eq!(never.check().map_err(|e| e.field), Err("digest"));
        let immediate: DeliveryPolicy =
            serde_json::from_str(r#"{"mode":"immediate"}"#).unwrap_or(never);
        assert_eq!(immediate, DeliveryPolicy::default());
        assert!(DeliveryPolicy::from_stored(Some(r#"{"mode":"weekly"}"#)).is_err());
        assert!(
            DeliveryPolicy::from_stored(Some(r#"{"mode":"digest","daily_at":"25:00"}"#)).is_err()
        );
    }

    #[test]
    fn a_digest_is_due_at_its_first_trigger_in_the_owners_zone() {
        let paris = Schedule::new("Europe/Paris", None).unwrap_or_default();
        let hourly_or_daily = DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: Some(at("11:30")),
            max_items: None,
        };
        // 11:00 in Paris: 11:30 comes before an hour has passed.
        assert_eq!(
            hourly_or_daily.digest_due(NOW, &paris),
            Some(NOW + 30 * MIN)
        );
        let count_only = DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: None,
            max_items: Some(5),
        };
        assert_eq!(count_only.digest_due(NOW, &paris), None);
        assert_eq!(DeliveryPolicy::default().digest_due(NOW, &paris), None);
    }

    #[test]
    fn quiet_hours_span_midnight_and_end_in_local_time() {
        // 22:00–07:00 in New York (UTC−5 in December): 10:00Z is 05:00 there, quiet until
        // 07:00 local, 12:00Z.
        let ny =
            Schedule::new("America/New_York", Some((at("22:00"), at("07:00")))).unwrap_or_default();
        assert_eq!(ny.quiet_until(NOW), Some(NOW + 120 * MIN));
        // 13:00Z is 08:00 there: not quiet.
        assert_eq!(ny.quiet_until(NOW + 180 * MIN), None);
        // Within a day: 09:00–17:00 in UTC.
        let office = Schedule::new("UTC", Some((at("09:00"), at("17:00")))).unwrap_or_default();
        assert_eq!(office.quiet_until(NOW), Some(NOW + 7 * 60 * MIN));
        assert_eq!(office.quiet_until(NOW - 120 * MIN), None);
        assert!(Schedule::new("Mars/Olympus", None).is_err());
        assert!(Schedule::new("UTC", Some((at("09:00"), at("09:00")))).is_err());
    }

    #[test]
    fn a_time_skipped_by_a_clock_change_is_the_moment_after_it() {
        // Europe/Paris skips 02:00–03:00 on 2026-03-29 (01:00Z). From 2026-03-28T12:00Z the
        // next 02:30 local is the moment after the gap: 03:30 local, 01:30Z.
        let paris = Schedule::new("Europe/Paris", None).unwrap_or_default();
        let before = 1_774_699_200_000; // 2026-03-28T12:00:00Z
        assert_eq!(paris.next(before, at("02:30")), 1_774_747_800_000);
    }
}
