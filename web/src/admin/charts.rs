//! Charts drawn on the server as inline SVG (no script): messages per hour by app and
//! notifications per hour by channel, as stacked bars, and the time from queued to sent
//! (p50 and p99 per hour) as two lines, over the last 48 hours. Each chart has a `<title>`
//! and `<desc>`, labelled axes, and every bar and point says its numbers on hover (its own
//! `<title>`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tidings_store::{HourlyCount, HourlyLatency, HOUR_MS};

use super::Admin;
use crate::view::{self, Nav};
use crate::{AppState, Error};

/// Hours drawn.
pub(crate) const HOURS: i64 = 48;
/// The most keys drawn apart; the rest are summed as "other".
const SERIES: usize = 6;
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;
/// Colours a reader with common colour blindness tells apart (Okabe–Ito), then grey.
const COLOURS: [&str; 7] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999",
];

/// A rectangle of a stacked bar.
pub(crate) struct Bar {
    pub x: String,
    pub y: String,
    pub w: String,
    pub h: String,
    pub colour: &'static str,
    pub title: String,
}

/// A labelled position on an axis.
pub(crate) struct Tick {
    pub at: String,
    pub label: String,
}

/// A series in the legend.
pub(crate) struct Legend {
    pub colour: &'static str,
    pub name: String,
    pub total: String,
}

/// A point of a line, with its numbers.
pub(crate) struct Dot {
    pub x: String,
    pub y: String,
    pub colour: &'static str,
    pub title: String,
}

/// A line.
pub(crate) struct Line {
    pub colour: &'static str,
    pub points: String,
}

/// One chart's geometry.
pub(crate) struct Chart {
    pub id: &'static str,
    pub title: String,
    pub desc: String,
    pub y_label: &'static str,
    pub bars: Vec<Bar>,
    pub lines: Vec<Line>,
    pub dots: Vec<Dot>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub legend: Vec<Legend>,
    pub empty: bool,
}

/// The layout every chart shares.
pub(crate) struct Frame {
    pub width: String,
    pub height: String,
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    pub x_label_y: String,
    pub y_label_x: String,
    pub middle_x: String,
    pub middle_y: String,
}

#[derive(Template)]
#[template(path = "web/admin_charts.html")]
struct ChartsView {
    nav: Nav,
    frame: Frame,
    charts: Vec<Chart>,
    hours: i64,
}

fn num(v: f64) -> String {
    format!("{v:.1}")
}

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// The smallest 1, 2 or 5 × 10ⁿ at least `v` (1 at least).
pub(crate) fn nice(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let mut step = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * step >= v {
                return m * step;
            }
        }
        step *= 10.0;
    }
}

/// An hour as `12-02 14:00`.
fn hour_label(hour: i64) -> String {
    let full = view::when(hour * HOUR_MS);
    full.get(5..16).unwrap_or(&full).to_string()
}

fn x_of(slot: i64) -> f64 {
    LEFT + plot_width() * slot as f64 / HOURS as f64
}

fn x_ticks(first: i64) -> Vec<Tick> {
    (0..=HOURS)
        .step_by(12)
        .map(|slot| Tick {
            at: num(x_of(slot)),
            label: hour_label(first + slot),
        })
        .collect()
}

fn y_ticks(max: f64, show: impl Fn(f64) -> String) -> Vec<Tick> {
    [0.0, 0.5, 1.0]
        .into_iter()
        .map(|f| Tick {
            at: num(TOP + plot_height() * (1.0 - f)),
            label: show(max * f),
        })
        .collect()
}

/// A duration in ms as people read it.
pub(crate) fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 120_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.1} min", ms / 60_000.0)
    }
}

/// Stacked bars per hour from `first` (an hour number), one colour per key: the
/// [`SERIES`] largest keys, the rest as "other".
pub(crate) fn stacked(
    id: &'static str,
    title: &str,
    what: &str,
    first: i64,
    counts: &[HourlyCount],
    name: impl Fn(&str) -> String,
) -> Chart {
    let mut totals: std::collections::BTreeMap<&str, i64> = Default::default();
    for c in counts.iter().filter(|c| c.hour >= first) {
        *totals.entry(c.key.as_str()).or_default() += c.count;
    }
    let mut keys: Vec<(&str, i64)> = totals.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let other = keys.len() > SERIES;
    let shown = if other { SERIES - 1 } else { keys.len() };
    let series = |key: &str| {
        keys.iter()
            .position(|(k, _)| *k == key)
            .map_or(shown, |i| i.min(shown))
    };
    let mut names: Vec<String> = keys[..shown].iter().map(|(k, _)| name(k)).collect();
    let mut sums: Vec<i64> = keys[..shown].iter().map(|(_, n)| *n).collect();
    if other {
        names.push("other".to_string());
        sums.push(keys[shown..].iter().map(|(_, n)| n).sum());
    }
    let mut grid = vec![vec![0i64; names.len()]; HOURS as usize];
    for c in counts {
        let slot = c.hour - first;
        if (0..HOURS).contains(&slot) {
            grid[slot as usize][series(&c.key)] += c.count;
        }
    }
    let max = nice(
        grid.iter()
            .map(|h| h.iter().sum::<i64>())
            .max()
            .unwrap_or(0) as f64,
    );
    let width = plot_width() / HOURS as f64;
    let mut bars = Vec::new();
    for (slot, column) in grid.iter().enumerate() {
        let mut top = TOP + plot_height();
        for (s, &n) in column.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let h = plot_height() * n as f64 / max;
            top -= h;
            bars.push(Bar {
                x: num(x_of(slot as i64) + 1.0),
                y: num(top),
                w: num((width - 2.0).max(1.0)),
                h: num(h),
                colour: COLOURS[s.min(COLOURS.len() - 1)],
                title: format!(
                    "{} UTC: {} {what} from {}",
                    hour_label(first + slot as i64),
                    n,
                    names[s]
                ),
            });
        }
    }
    let total: i64 = sums.iter().sum();
    Chart {
        id,
        title: title.to_string(),
        desc: format!(
            "{total} {what} in the last {HOURS} hours, per hour, stacked by {}: {}.",
            if id == "messages" { "app" } else { "channel" },
            names
                .iter()
                .zip(&sums)
                .map(|(n, s)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        y_label: if id == "messages" {
            "messages per hour"
        } else {
            "notifications per hour"
        },
        empty: bars.is_empty(),
        bars,
        lines: Vec::new(),
        dots: Vec::new(),
        y_ticks: y_ticks(max, |v| format!("{v:.0}")),
        x_ticks: x_ticks(first),
        legend: names
            .into_iter()
            .zip(sums)
            .enumerate()
            .map(|(i, (name, total))| Legend {
                colour: COLOURS[i.min(COLOURS.len() - 1)],
                name,
                total: total.to_string(),
            })
            .collect(),
    }
}

/// Which of an hour's waiting times a line draws.
type Pick = fn(&HourlyLatency) -> i64;

/// p50 and p99 lines per hour from `first`.
pub(crate) fn latency(first: i64, rows: &[HourlyLatency]) -> Chart {
    let rows: Vec<&HourlyLatency> = rows
        .iter()
        .filter(|r| (0..HOURS).contains(&(r.hour - first)))
        .collect();
    let max = nice(rows.iter().map(|r| r.p99_ms).max().unwrap_or(0) as f64 / 1000.0) * 1000.0;
    let width = plot_width() / HOURS as f64;
    let point = |r: &HourlyLatency, ms: i64| {
        (
            x_of(r.hour - first) + width / 2.0,
            TOP + plot_height() * (1.0 - ms as f64 / max),
        )
    };
    let mut lines = Vec::new();
    let mut dots = Vec::new();
    let picks: [(&'static str, &str, Pick); 2] = [
        (COLOURS[0], "p50", |r| r.p50_ms),
        (COLOURS[5], "p99", |r| r.p99_ms),
    ];
    for (colour, label, pick) in picks {
        let points: Vec<(f64, f64)> = rows.iter().map(|r| point(r, pick(r))).collect();
        lines.push(Line {
            colour,
            points: points
                .iter()
                .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
                .collect::<Vec<_>>()
                .join(" "),
        });
        for (r, (x, y)) in rows.iter().zip(points) {
            dots.push(Dot {
                x: num(x),
                y: num(y),
                colour,
                title: format!(
                    "{} UTC: {label} {} ({} sent)",
                    hour_label(r.hour),
                    duration(pick(r) as f64),
                    r.count
                ),
            });
        }
    }
    let sent: usize = rows.iter().map(|r| r.count).sum();
    Chart {
        id: "latency",
        title: "Delivery time".to_string(),
        desc: format!(
            "Time from queued to sent of the {sent} notifications sent from the last {HOURS} hours, per hour queued: the median (p50) and the 99th percentile (p99); the slowest p99 is {}.",
            duration(rows.iter().map(|r| r.p99_ms).max().unwrap_or(0) as f64)
        ),
        y_label: "queued to sent",
        empty: rows.is_empty(),
        bars: Vec::new(),
        lines,
        dots,
        y_ticks: y_ticks(max, duration),
        x_ticks: x_ticks(first),
        legend: vec![
            Legend {
                colour: COLOURS[0],
                name: "p50 (median)".into(),
                total: String::new(),
            },
            Legend {
                colour: COLOURS[5],
                name: "p99".into(),
                total: String::new(),
            },
        ],
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Response, Error> {
    let first = tidings_store::now_ms().div_euclid(HOUR_MS) - (HOURS - 1);
    let since = first * HOUR_MS;
    let messages = state.store.messages_per_hour(since).await?;
    let notifications = state.store.notifications_per_hour(since).await?;
    let latencies = state.store.delivery_latency(since).await?;
    let app = |key: &str| {
        if key.is_empty() {
            "(no app)".to_string()
        } else {
            key.to_string()
        }
    };
    view::ok(&ChartsView {
        nav: Nav::user(&state, &me),
        frame: Frame {
            width: num(WIDTH),
            height: num(HEIGHT),
            left: num(LEFT),
            right: num(WIDTH - RIGHT),
            top: num(TOP),
            bottom: num(HEIGHT - BOTTOM),
            x_label_y: num(HEIGHT - 4.0),
            y_label_x: num(14.0),
            middle_x: num(LEFT + plot_width() / 2.0),
            middle_y: num(TOP + plot_height() / 2.0),
        },
        charts: vec![
            stacked(
                "messages",
                "Messages per hour by app",
                "messages",
                first,
                &messages,
                app,
            ),
            stacked(
                "notifications",
                "Notifications per hour by channel",
                "notifications",
                first,
                &notifications,
                str::to_string,
            ),
            latency(first, &latencies),
        ],
        hours: HOURS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(3.0), 5.0);
        assert_eq!(nice(12.0), 20.0);
        assert_eq!(nice(100.0), 100.0);
        assert_eq!(nice(101.0), 200.0);
    }

    #[test]
    fn bars_stack_and_say_their_numbers() {
        let first = 1000;
        let counts = vec![
            HourlyCount {
                hour: 1000,
                key: "bodhi".into(),
                count: 3,
            },
            HourlyCount {
                hour: 1000,
                key: "".into(),
                count: 1,
            },
            HourlyCount {
                hour: 1047,
                key: "bodhi".into(),
                count: 2,
            },
            // Outside the window: not drawn.
            HourlyCount {
                hour: 999,
                key: "koji".into(),
                count: 9,
            },
        ];
        let chart = stacked("messages", "M", "messages", first, &counts, |k| {
            if k.is_empty() {
                "(no app)".into()
            } else {
                k.into()
            }
        });
        assert_eq!(chart.bars.len(), 3);
        assert!(chart
            .bars
            .iter()
            .any(|b| b.title.ends_with("3 messages from bodhi")));
        assert!(chart
            .bars
            .iter()
            .any(|b| b.title.ends_with("1 messages from (no app)")));
        assert_eq!(chart.legend[0].name, "bodhi");
        assert_eq!(chart.legend[0].total, "5");
        assert!(chart.desc.starts_with("6 messages"), "{}", chart.desc);
        assert!(!chart.empty);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(250.0), "250 ms");
        assert_eq!(duration(1500.0), "1.5 s");
        assert_eq!(duration(180_000.0), "3.0 min");
    }
}
