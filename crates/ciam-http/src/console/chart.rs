//! The overview's chart: logins per hour over the last day, stacked by
//! outcome, drawn here as SVG (no script, nothing fetched).

use ciam_core::ErrorCode;
use ciam_core::model::{Outcome, Status};
use ciam_core::store::ActivityCount;
use maud::{Markup, html};

use super::Texts;

/// What a login's outcome counts as on the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Logged in: a session, or a password to change first.
    Success,
    /// A wrong password, or an unknown number.
    Wrong,
    /// Refused because the account is locked.
    Locked,
    /// Refused by the address throttle or fair hashing.
    Throttled,
    /// Refused because the server was busy.
    Busy,
    /// Anything else (a disabled user, an app the user may not use, …).
    Other,
}

/// How many kinds there are: a chart row's width.
const KINDS: usize = 6;

impl Kind {
    /// Every kind, in the chart's stacking order.
    pub const ALL: [Kind; KINDS] = [Kind::Success, Kind::Wrong, Kind::Locked, Kind::Throttled, Kind::Busy, Kind::Other];

    /// The kind of a stored outcome.
    pub fn of(outcome: &str) -> Kind {
        match Outcome::parse(outcome) {
            Some(Outcome::Status(Status::Success | Status::PasswordWarn | Status::PasswordExpired)) => Kind::Success,
            Some(Outcome::Refused(ErrorCode::InvalidCredentials)) => Kind::Wrong,
            Some(Outcome::Refused(ErrorCode::AccountLocked)) => Kind::Locked,
            Some(Outcome::Refused(ErrorCode::AddressThrottled)) => Kind::Throttled,
            Some(Outcome::Refused(ErrorCode::SystemBusy)) => Kind::Busy,
            _ => Kind::Other,
        }
    }

    /// Its place in a chart row.
    fn index(self) -> usize {
        self as usize
    }

    /// Its name in the page (a CSS class and a data attribute).
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Wrong => "wrong",
            Kind::Locked => "locked",
            Kind::Throttled => "throttled",
            Kind::Busy => "busy",
            Kind::Other => "other",
        }
    }

    /// Its label.
    pub fn label(self, t: &Texts) -> &'static str {
        match self {
            Kind::Success => t.success,
            Kind::Wrong => t.wrong_password,
            Kind::Locked => t.locked,
            Kind::Throttled => t.throttled,
            Kind::Busy => t.busy,
            Kind::Other => t.other,
        }
    }
}

/// Counts per hour (oldest first) and kind.
pub(crate) struct Hours {
    /// The first hour drawn, in Unix seconds / 3600.
    pub first_hour: i64,
    /// Each hour's counts, by [`Kind::index`].
    pub counts: Vec<[i64; KINDS]>,
}

impl Hours {
    /// The `hours` hours up to `this_hour` (Unix seconds / 3600), from the
    /// store's counts.
    pub fn new(activity: &[ActivityCount], this_hour: i64, hours: usize) -> Hours {
        let first_hour = this_hour - hours as i64 + 1;
        let mut counts = vec![[0i64; KINDS]; hours];
        for row in activity {
            let Ok(at) = usize::try_from(row.hour - first_hour) else { continue };
            if let Some(slot) = counts.get_mut(at) {
                slot[Kind::of(&row.outcome).index()] += row.count;
            }
        }
        Hours { first_hour, counts }
    }

    /// The total of each kind.
    pub fn totals(&self) -> [i64; KINDS] {
        let mut totals = [0; KINDS];
        for hour in &self.counts {
            for (total, n) in totals.iter_mut().zip(hour) {
                *total += n;
            }
        }
        totals
    }
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 200;
const LEFT: i64 = 36;
const BOTTOM: i64 = 22;

/// One bar's piece: a kind's count in an hour, where it is drawn.
struct Piece {
    kind: Kind,
    count: i64,
    top: i64,
    height: i64,
}

/// One hour's bar: where it starts, the hour of the day, and its pieces.
struct Bar {
    x: i64,
    hour: i64,
    pieces: Vec<Piece>,
}

/// The bars of `hours`, scaled so that the busiest reaches the top.
fn bars(hours: &Hours, peak: i64) -> Vec<Bar> {
    let slot = (WIDTH - LEFT) / hours.counts.len().max(1) as i64;
    let y = |value: i64| y_of(value, peak);
    hours
        .counts
        .iter()
        .enumerate()
        .map(|(i, counts)| {
            let mut below = 0;
            let pieces = Kind::ALL
                .iter()
                .zip(counts)
                .filter(|(_, n)| **n > 0)
                .map(|(kind, n)| {
                    let piece = Piece { kind: *kind, count: *n, top: y(below + n), height: y(below) - y(below + n) };
                    below += n;
                    piece
                })
                .collect();
            Bar { x: LEFT + i as i64 * slot + 2, hour: (hours.first_hour + i as i64).rem_euclid(24), pieces }
        })
        .collect()
}

/// The height of `value` on a plot whose top is `peak`.
fn y_of(value: i64, peak: i64) -> i64 {
    let plot_height = HEIGHT - BOTTOM - 8;
    HEIGHT - BOTTOM - value * plot_height / peak
}

/// The chart, with a legend of totals.
pub(crate) fn draw(hours: &Hours, t: &Texts) -> Markup {
    let peak = hours.counts.iter().map(|h| h.iter().sum::<i64>()).max().unwrap_or(0).max(1);
    let slot = (WIDTH - LEFT) / hours.counts.len().max(1) as i64;
    let bar = (slot - 4).max(2);
    html! {
        figure.chart {
            // Scrolls sideways on a narrow screen rather than shrink
            // its labels out of reading.
            div.plot {
                svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(t.logins_24h) {
                    line.axis x1=(LEFT) y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) {}
                    text.tick x=(LEFT - 6) y=(y_of(peak, peak) + 4) text-anchor="end" { (peak) }
                    text.tick x=(LEFT - 6) y=(HEIGHT - BOTTOM) text-anchor="end" { "0" }
                    @for Bar { x, hour, pieces } in &bars(hours, peak) {
                        g data-hour=(hour) {
                            @for piece in pieces {
                                rect class=(format!("o-{}", piece.kind.slug())) data-outcome=(piece.kind.slug())
                                    data-count=(piece.count) x=(x) y=(piece.top) width=(bar) height=(piece.height) {
                                    title { (format!("{hour:02}:00 UTC · {}: {}", piece.kind.label(t), piece.count)) }
                                }
                            }
                            @if hour % 3 == 0 {
                                text.tick x=(x + bar / 2) y=(HEIGHT - 6) text-anchor="middle" { (format!("{hour:02}")) }
                            }
                        }
                    }
                }
            }
            (legend(hours, t))
        }
    }
}

fn legend(hours: &Hours, t: &Texts) -> Markup {
    html! {
        figcaption {
            ul.legend {
                @for (kind, total) in Kind::ALL.iter().zip(hours.totals()) {
                    li data-outcome=(kind.slug()) data-total=(total) {
                        span class=(format!("swatch o-{}", kind.slug())) {}
                        (kind.label(t)) ": " strong { (total) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_fall_in_their_hour_and_kind() {
        let row = |hour, outcome: &str, count| ActivityCount { hour, outcome: outcome.into(), count };
        let activity = [
            row(100, "SUCCESS", 3),
            row(100, "IDAAS.SDK.LOGIN.0002", 9),
            row(101, "IDAAS.SDK.LOGIN.0001", 1),
            row(101, "ACCESS_DENIED", 2),
            row(50, "SUCCESS", 7),
        ];
        let hours = Hours::new(&activity, 101, 24);
        assert_eq!(hours.first_hour, 78);
        assert_eq!(hours.counts[22], [3, 9, 0, 0, 0, 0]);
        assert_eq!(hours.counts[23], [0, 0, 1, 0, 0, 2]);
        assert_eq!(hours.totals(), [3, 9, 1, 0, 0, 2], "an hour before the day is left out");
        let svg = draw(&hours, super::super::texts(ciam_core::Lang::En)).into_string();
        assert!(svg.contains(r#"data-outcome="wrong" data-count="9""#), "{svg}");
        assert!(svg.contains(r#"data-total="9""#));
    }
}
