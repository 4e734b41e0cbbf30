//! The overview: the last day's logins, locked accounts, the hashing pool
//! and the signing keys.

use axum::extract::State;
use axum::response::Response;
use ciam_core::CiamError;
use ciam_core::console::{KeySummary, LockedAccount};
use maud::{Markup, html};

use super::chart::{Hours, draw};
use super::users::link;
use super::{Console, Nav, failure, when};
use crate::AppState;

/// Hours the chart covers.
const HOURS: u32 = 24;
/// Locked accounts listed; past it the count says "50+".
const LOCKED_SHOWN: u32 = 50;

/// What the overview shows.
struct OverviewView {
    hours: Hours,
    /// The first [`LOCKED_SHOWN`] locked accounts, and whether there are more.
    locked: Vec<LockedAccount>,
    more_locked: bool,
    keys: Vec<KeySummary>,
    /// Hashes running and waiting, and the pool's workers.
    running: usize,
    waiting: usize,
    workers: usize,
}

async fn load(state: &AppState) -> Result<OverviewView, CiamError> {
    let ciam = &state.ciam;
    let activity = ciam.login_activity(HOURS).await?;
    let mut locked = ciam.locked_accounts(LOCKED_SHOWN + 1).await?;
    let keys = ciam.signing_keys().await?;
    let more_locked = locked.len() > LOCKED_SHOWN as usize;
    locked.truncate(LOCKED_SHOWN as usize);
    let hours = Hours::new(&activity, ciam.now().div_euclid(3600), HOURS as usize);
    let (running, waiting) = ciam.hashing_load();
    let workers = ciam.config().hashing.workers;
    Ok(OverviewView { hours, locked, more_locked, keys, running, waiting, workers })
}

pub(crate) async fn page(State(state): State<AppState>, console: Console) -> Response {
    match load(&state).await {
        Ok(view) => console.page(Nav::Overview, console.t.overview, overview(&console, &view)),
        Err(e) => failure(console.lang, &e),
    }
}

fn overview(console: &Console, view: &OverviewView) -> Markup {
    let t = console.t;
    html! {
        section.card {
            h2 { (t.logins_24h) }
            @if view.hours.totals().iter().sum::<i64>() == 0 { p.muted { (t.no_logins) } }
            (draw(&view.hours, t))
        }
        div.columns {
            (locked_card(console, view))
            section.card #hashing {
                h2 { (t.hashing_pool) }
                p.gauge {
                    meter min="0" max=(view.workers) value=(view.running) {}
                    " " strong { (view.running) "/" (view.workers) } " " (t.running) ", "
                    strong { (view.waiting) } " " (t.waiting)
                }
            }
        }
        (keys_card(console, &view.keys))
    }
}

fn locked_card(console: &Console, view: &OverviewView) -> Markup {
    let t = console.t;
    html! {
        section.card #locked {
            h2 {
                (t.locked_now) " "
                span.count { @if view.more_locked { (LOCKED_SHOWN) "+" } @else { (view.locked.len()) } }
            }
            @if view.locked.is_empty() {
                p.muted { (t.none_locked) }
            } @else {
                ul.plain {
                    @for account in &view.locked {
                        li { (link(&account.user)) " " span.muted { (t.until) " " (when(account.until)) } }
                    }
                }
            }
        }
    }
}

fn keys_card(console: &Console, keys: &[KeySummary]) -> Markup {
    let t = console.t;
    html! {
        section.card #keys {
            h2 { (t.signing_keys) }
            div.scroll {
                table {
                    thead { tr { th { "kid" } th { "alg" } th { (t.created) } th { (t.status) } } }
                    tbody {
                        @for key in keys {
                            tr {
                                td { code { (key.kid) } }
                                td { (key.alg.as_str()) }
                                td { (when(key.created_at)) }
                                td {
                                    @match (key.retired_at, key.publish_until) {
                                        (None, _) => span.tag.good { (t.current) },
                                        (Some(_), Some(until)) => { (t.retired) ", " (t.published_until) " " (when(until)) },
                                        (Some(_), None) => (t.retired),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
