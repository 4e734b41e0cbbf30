//! The overview: the last day's logins, locked accounts, the hashing pool
//! and the signing keys.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::chart::{Hours, draw};
use super::users::link;
use super::{Console, Nav, failure, when};
use crate::AppState;

/// Hours the chart covers.
const HOURS: u32 = 24;
/// Locked accounts listed; past it the count says "50+".
const LOCKED_SHOWN: u32 = 50;

pub(crate) async fn page(State(state): State<AppState>, console: Console) -> Response {
    let t = console.t;
    let ciam = &state.ciam;
    let loaded = async {
        let activity = ciam.login_activity(HOURS).await?;
        let locked = ciam.locked_accounts(LOCKED_SHOWN + 1).await?;
        let keys = ciam.signing_keys().await?;
        Ok::<_, ciam_core::CiamError>((activity, locked, keys))
    };
    let (activity, mut locked, keys) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return failure(console.lang, &e),
    };
    let more_locked = locked.len() > LOCKED_SHOWN as usize;
    locked.truncate(LOCKED_SHOWN as usize);
    let hours = Hours::new(&activity, ciam.now().div_euclid(3600), HOURS as usize);
    let (running, waiting) = ciam.hashing_load();
    let workers = ciam.config().hashing.workers;
    let body = html! {
        section.card {
            h2 { (t.logins_24h) }
            @if hours.totals().iter().sum::<i64>() == 0 { p.muted { (t.no_logins) } }
            (draw(&hours, t))
        }
        div.columns {
            section.card #locked {
                h2 {
                    (t.locked_now) " "
                    span.count { @if more_locked { (LOCKED_SHOWN) "+" } @else { (locked.len()) } }
                }
                @if locked.is_empty() {
                    p.muted { (t.none_locked) }
                } @else {
                    ul.plain {
                        @for account in &locked {
                            li {
                                (link(&account.user))
                                " " span.muted { (t.until) " " (when(account.until)) }
                            }
                        }
                    }
                }
            }
            section.card #hashing {
                h2 { (t.hashing_pool) }
                p.gauge {
                    meter min="0" max=(workers) value=(running) {}
                    " " strong { (running) "/" (workers) } " " (t.running) ", " strong { (waiting) } " " (t.waiting)
                }
            }
        }
        section.card #keys {
            h2 { (t.signing_keys) }
            div.scroll {
                table {
                    thead { tr { th { "kid" } th { (t.created) } th { (t.status) } } }
                    tbody {
                        @for key in &keys {
                            tr {
                                td { code { (key.kid) } }
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
    };
    console.page(Nav::Overview, t.overview, body)
}
