//! The audit log: filter by mobile, user, address, outcome and time range;
//! newest first, a page at a time.

use axum::extract::{Query, State};
use axum::response::Response;
use ciam_core::ErrorCode;
use ciam_core::admin::AuditFilter;
use ciam_core::clock::{UnixTime, from_rfc3339};
use ciam_core::model::{AuditEntry, Status};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart::Kind;
use super::{Console, Nav, PREFIX, failure, when};
use crate::AppState;
use crate::pages::forms::{Refused, choice, field, nonblank, urlencode};

/// Events per page.
const PAGE: u32 = 50;

/// The outcomes offered in the filter: every status and every SDK code
/// (the calls that leave audit events).
fn outcomes() -> impl Iterator<Item = &'static str> {
    let codes = ErrorCode::ALL.iter().map(|code| code.as_str()).filter(|code| code.starts_with("IDAAS.SDK."));
    Status::ALL.into_iter().map(Status::as_str).chain(codes)
}

#[derive(Deserialize, Default)]
pub(crate) struct Filter {
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

/// A time typed as the hint shows it (`YYYY-MM-DD HH:MM`, or a date, or
/// RFC 3339), taken as UTC. Plain text fields: a `datetime-local` field
/// shows the browser's own format (`mm/dd/yyyy, --:--`), not the hint's.
fn typed_time(text: &str) -> Option<UnixTime> {
    let text = text.trim();
    match text.len() {
        10 => from_rfc3339(&format!("{text}T00:00:00Z")),
        16 => from_rfc3339(&format!("{}:00Z", text.replace(' ', "T"))),
        _ => from_rfc3339(text),
    }
}

impl Filter {
    /// The domain's filter, or the field whose time does not parse (it is
    /// refused next to its field, not dropped from the filter).
    fn query(&self) -> Result<AuditFilter, &'static str> {
        for (name, text) in [("since", &self.since), ("until", &self.until)] {
            if !text.trim().is_empty() && typed_time(text).is_none() {
                return Err(name);
            }
        }
        Ok(AuditFilter {
            mobile: nonblank(&self.mobile),
            user_id: nonblank(&self.user_id),
            ip: nonblank(&self.ip),
            outcome: nonblank(&self.outcome),
            since: typed_time(&self.since),
            until: typed_time(&self.until),
            before_id: self.before,
            limit: Some(PAGE),
        })
    }

    /// The filters as a query, kept from page to page (`&name=value…`).
    fn kept(&self) -> String {
        [
            ("mobile", &self.mobile),
            ("user_id", &self.user_id),
            ("ip", &self.ip),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("&{k}={}", urlencode(v)))
        .collect()
    }
}

pub(crate) async fn page(State(state): State<AppState>, console: Console, Query(filter): Query<Filter>) -> Response {
    let (events, refused) = match filter.query() {
        Ok(query) => match state.ciam.audit_events(&query).await {
            Ok(events) => (events, None),
            Err(e) => return failure(console.lang, &e),
        },
        Err(name) => (Vec::new(), Some(Refused::Field { name: name.to_owned(), why: console.t.bad_time.to_owned() })),
    };
    console.page(Nav::Audit, console.t.audit, view(&console, &filter, &events, refused.as_ref()))
}

fn view(console: &Console, filter: &Filter, events: &[AuditEntry], refused: Option<&Refused>) -> Markup {
    let t = console.t;
    let kept = filter.kept();
    let next = (events.len() == PAGE as usize).then(|| events.last().map(|e| e.id)).flatten();
    let older = next.map(|before| format!("{PREFIX}/audit?before={before}{kept}"));
    let newest = filter.before.is_some().then(|| format!("{PREFIX}/audit?{}", kept.trim_start_matches('&')));
    let input = |label: &str, name: &str, value: &str, kind: &str| field(label, name, value, kind, refused);
    let outcomes: Vec<(&str, &str)> = [("", "—")].into_iter().chain(outcomes().map(|o| (o, o))).collect();
    html! {
        form.filters method="get" action=(format!("{PREFIX}/audit")) {
            div.grid {
                (input(t.mobile, "mobile", &filter.mobile, "search"))
                (input(t.user, "user_id", &filter.user_id, "search"))
                (input(t.address, "ip", &filter.ip, "search"))
                (choice(t.outcome, "outcome", &filter.outcome, &outcomes, None))
                (input(t.since, "since", &filter.since, "text"))
                (input(t.before, "until", &filter.until, "text"))
            }
            p.muted { (t.time_hint) }
            button type="submit" { (t.filter) }
        }
        (table(console, events))
        nav.pages {
            @if let Some(newest) = newest { a href=(newest) { (t.newest) } }
            @if let Some(older) = older { a href=(older) { (t.older) } }
        }
    }
}

/// Events as a table (also on a user's page).
pub(crate) fn table(console: &Console, events: &[AuditEntry]) -> Markup {
    let t = console.t;
    html! {
        @if events.is_empty() { p.muted { (t.no_events) } } @else {
            div.scroll {
                table.events {
                    thead { tr { th { (t.time) } th { (t.action) } th { (t.outcome) } th { (t.mobile) } th { (t.address) } th { (t.app) } } }
                    tbody {
                        @for entry in events {
                            @let e = &entry.event;
                            @let outcome = e.outcome.as_str();
                            tr data-outcome=(Kind::of(outcome).slug()) {
                                td { (when(e.at)) }
                                td { (e.action.as_str()) }
                                td {
                                    span class=(format!("tag o-{}", Kind::of(outcome).slug())) { (outcome) }
                                    // Refusals that cost no hash: one event a minute, counted.
                                    @if entry.count > 1 { " " span.count { "× " (entry.count) } }
                                }
                                td {
                                    @match (&e.user_id, &e.mobile) {
                                        (Some(user), Some(mobile)) => a href=(format!("{PREFIX}/users/{}", urlencode(user.as_str()))) { (mobile) },
                                        (_, Some(mobile)) => (mobile),
                                        _ => "",
                                    }
                                }
                                td { (e.ip.as_deref().unwrap_or("")) }
                                td { @if let Some(app) = &e.client_id { code.short title=(app) { (app.get(..8).unwrap_or(app)) "…" } } }
                            }
                        }
                    }
                }
            }
        }
    }
}
