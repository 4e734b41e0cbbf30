//! Policies: password, lockout, the address throttle and SMS codes, each a
//! form whose refusals show next to their field.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use ciam_core::CiamError;
use ciam_core::policy::{
    Localised, LockScope, LockoutPolicy, LockoutPolicyPatch, PasswordPolicy, PasswordPolicyPatch, ThrottlePolicy,
    ThrottlePolicyPatch,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{Console, Done, Nav, PREFIX, Posted, again, done_message, failure, see_other, sms_policy};
use crate::AppState;
use crate::pages::forms::{Refused, choice, field, form_error, notice, number, one_of};

/// Every field of the three forms, as typed (one struct: a post carries
/// the fields of its own form only).
#[derive(Deserialize, Default)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    min_length: String,
    #[serde(default)]
    max_length: String,
    #[serde(default)]
    regex: String,
    #[serde(default)]
    tip_zh: String,
    #[serde(default)]
    tip_en: String,
    #[serde(default)]
    max_age_days: String,
    #[serde(default)]
    warn_days: String,
    #[serde(default)]
    history: String,
    #[serde(default)]
    max_failures: String,
    #[serde(default)]
    lock_seconds: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    account_max_failures: String,
    #[serde(default)]
    failure_reset_seconds: String,
    #[serde(default)]
    ip_max_failures: String,
    #[serde(default)]
    ip_window_seconds: String,
    #[serde(default)]
    ip_allowlist: String,
    #[serde(default)]
    pub(super) code_ttl_seconds: String,
    #[serde(default)]
    pub(super) resend_seconds: String,
    #[serde(default)]
    pub(super) mobile_daily_max: String,
    #[serde(default)]
    pub(super) ip_hourly_max: String,
    #[serde(default)]
    pub(super) global_hourly_max: String,
    #[serde(default)]
    pub(super) max_checks: String,
    #[serde(default)]
    pub(super) mobile_daily_max_checks: String,
    #[serde(default)]
    pub(super) allowed_prefixes: String,
}

impl PolicyForm {
    fn of(password: &PasswordPolicy, lockout: &LockoutPolicy, throttle: &ThrottlePolicy) -> Self {
        PolicyForm {
            min_length: password.min_length.to_string(),
            max_length: password.max_length.to_string(),
            regex: password.regex.clone(),
            tip_zh: password.tip.zh.clone(),
            tip_en: password.tip.en.clone(),
            max_age_days: password.max_age_days.to_string(),
            warn_days: password.warn_days.to_string(),
            history: password.history.to_string(),
            max_failures: lockout.max_failures.to_string(),
            lock_seconds: lockout.lock_seconds.to_string(),
            scope: lockout.scope.as_str().to_owned(),
            account_max_failures: lockout.account_max_failures.to_string(),
            failure_reset_seconds: lockout.failure_reset_seconds.to_string(),
            ip_max_failures: throttle.ip_max_failures.to_string(),
            ip_window_seconds: throttle.ip_window_seconds.to_string(),
            ip_allowlist: throttle.ip_allowlist.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            ..Default::default()
        }
    }
}

pub(crate) async fn page(State(state): State<AppState>, console: Console, Query(done): Query<Done>) -> Response {
    render(&state, &console, done.done.as_deref(), None, None).await
}

/// Which form a post was, and the form as typed.
type Typed<'a> = (&'a str, &'a PolicyForm);

/// The four policies, as their forms show them.
async fn load(state: &AppState) -> Result<PolicyForm, CiamError> {
    let password = state.ciam.password_policy().await?;
    let lockout = state.ciam.lockout_policy().await?;
    let throttle = state.ciam.throttle_policy().await?;
    let mut form = PolicyForm::of(&password, &lockout, &throttle);
    sms_policy::fill(&mut form, &state.ciam.sms_policy().await?);
    Ok(form)
}

async fn render(
    state: &AppState,
    console: &Console,
    done: Option<&str>,
    typed: Option<Typed<'_>>,
    refused: Option<Refused>,
) -> Response {
    let stored = match load(state).await {
        Ok(stored) => stored,
        Err(e) => return failure(console.lang, &e),
    };
    // The form that was posted shows what was typed and its refusal; the
    // others show what is stored.
    let shown = |which: &str| match typed {
        Some((posted, form)) if posted == which => (form, refused.as_ref()),
        _ => (&stored, None),
    };
    let t = console.t;
    let body = html! {
        (notice(done_message(t, done)))
        (section(console, "password", t.password_policy, password_fields(console, shown("password"))))
        (section(console, "lockout", t.lockout_policy, lockout_fields(console, shown("lockout"))))
        (section(console, "throttle", t.throttle_policy, throttle_fields(console, shown("throttle"))))
        @let (form, refused) = shown("sms");
        (section(console, "sms", sms_policy::title(console.lang), sms_policy::fields(console, form, refused)))
    };
    console.page(Nav::Policies, t.policies, body)
}

/// A form's fields as shown, and its refusal.
type Shown<'a> = (&'a PolicyForm, Option<&'a Refused>);

fn password_fields(console: &Console, (form, refused): Shown<'_>) -> Markup {
    let t = console.t;
    // A refusal of `tip` shows at both of its fields.
    let tip = |name: &str| match refused {
        Some(Refused::Field { name: field, why }) if field == "tip" => {
            Some(Refused::Field { name: name.to_owned(), why: why.clone() })
        }
        _ => None,
    };
    let (tip_zh, tip_en) = (tip("tip_zh"), tip("tip_en"));
    html! {
        div.grid {
            (field(t.min_length, "min_length", &form.min_length, "number", refused))
            (field(t.max_length, "max_length", &form.max_length, "number", refused))
            (field(t.max_age_days, "max_age_days", &form.max_age_days, "number", refused))
            (field(t.warn_days, "warn_days", &form.warn_days, "number", refused))
            (field(t.history, "history", &form.history, "number", refused))
        }
        (field(t.regex, "regex", &form.regex, "text", refused))
        (field(t.tip_zh, "tip_zh", &form.tip_zh, "text", tip_zh.as_ref()))
        (field(t.tip_en, "tip_en", &form.tip_en, "text", tip_en.as_ref()))
        (form_error(refused, &["min_length", "max_length", "max_age_days", "warn_days", "history", "regex", "tip"]))
    }
}

fn lockout_fields(console: &Console, (form, refused): Shown<'_>) -> Markup {
    let t = console.t;
    let scopes = [("account", t.scope_account), ("account_ip", t.scope_account_ip)];
    html! {
        div.grid {
            (field(t.max_failures, "max_failures", &form.max_failures, "number", refused))
            (field(t.lock_seconds, "lock_seconds", &form.lock_seconds, "number", refused))
            (choice(t.scope, "scope", &form.scope, &scopes, refused))
            (field(t.account_max_failures, "account_max_failures", &form.account_max_failures, "number", refused))
            (field(t.failure_reset_seconds, "failure_reset_seconds", &form.failure_reset_seconds, "number", refused))
        }
        (form_error(refused, &["max_failures", "lock_seconds", "scope", "account_max_failures", "failure_reset_seconds"]))
    }
}

fn throttle_fields(console: &Console, (form, refused): Shown<'_>) -> Markup {
    let t = console.t;
    html! {
        div.grid {
            (field(t.ip_max_failures, "ip_max_failures", &form.ip_max_failures, "number", refused))
            (field(t.ip_window_seconds, "ip_window_seconds", &form.ip_window_seconds, "number", refused))
        }
        (field(t.ip_allowlist, "ip_allowlist", &form.ip_allowlist, "text", refused))
        p.muted { (t.ip_allowlist_hint) }
        (form_error(refused, &["ip_max_failures", "ip_window_seconds", "ip_allowlist"]))
    }
}

fn section(console: &Console, which: &str, title: &str, fields: Markup) -> Markup {
    html! {
        section.card id=(format!("{which}-policy")) {
            h2 { (title) }
            form method="post" action=(format!("{PREFIX}/policies/{which}")) {
                (console.csrf_field())
                (fields)
                button type="submit" { (console.t.save) }
            }
        }
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Path(which): Path<String>,
    Posted(console, form): Posted<PolicyForm>,
) -> Response {
    let ciam = &state.ciam;
    let saved = match which.as_str() {
        "password" => async { ciam.update_password_policy(password_patch(&form)?).await.map(drop) }.await,
        "lockout" => async { ciam.update_lockout_policy(lockout_patch(&form)?).await.map(drop) }.await,
        "throttle" => async { ciam.update_throttle_policy(throttle_patch(&form)?).await.map(drop) }.await,
        "sms" => async { ciam.update_sms_policy(sms_policy::patch(&form)?).await.map(drop) }.await,
        _ => return super::error_page(console.lang, axum::http::StatusCode::NOT_FOUND, console.t.no_such_page),
    };
    match saved {
        Ok(()) => see_other(&format!("{PREFIX}/policies?done=saved")),
        Err(e) => {
            let console = console.showing(&format!("{PREFIX}/policies"));
            again(console.lang, &e, |refused| render(&state, &console, None, Some((&which, &form)), Some(refused)))
                .await
        }
    }
}

fn password_patch(form: &PolicyForm) -> Result<PasswordPolicyPatch, CiamError> {
    Ok(PasswordPolicyPatch {
        min_length: number("min_length", &form.min_length)?,
        max_length: number("max_length", &form.max_length)?,
        regex: Some(form.regex.clone()),
        tip: Some(Localised::new(form.tip_en.trim(), form.tip_zh.trim())),
        max_age_days: number("max_age_days", &form.max_age_days)?,
        warn_days: number("warn_days", &form.warn_days)?,
        history: number("history", &form.history)?,
    })
}

fn lockout_patch(form: &PolicyForm) -> Result<LockoutPolicyPatch, CiamError> {
    Ok(LockoutPolicyPatch {
        max_failures: number("max_failures", &form.max_failures)?,
        lock_seconds: number("lock_seconds", &form.lock_seconds)?,
        // Not sent: kept, as the API's PUT keeps it.
        scope: match form.scope.as_str() {
            "" => None,
            scope => Some(
                LockScope::parse(scope)
                    .ok_or_else(|| ciam_core::admin::invalid("scope", one_of(&["account", "account_ip"])))?,
            ),
        },
        account_max_failures: number("account_max_failures", &form.account_max_failures)?,
        failure_reset_seconds: number("failure_reset_seconds", &form.failure_reset_seconds)?,
    })
}

fn throttle_patch(form: &PolicyForm) -> Result<ThrottlePolicyPatch, CiamError> {
    let allowlist = form.ip_allowlist.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    Ok(ThrottlePolicyPatch {
        ip_max_failures: number("ip_max_failures", &form.ip_max_failures)?,
        ip_window_seconds: number("ip_window_seconds", &form.ip_window_seconds)?,
        ip_allowlist: Some(allowlist),
    })
}
