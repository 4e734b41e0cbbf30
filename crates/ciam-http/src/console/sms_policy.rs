//! The SMS policy's form on the Policies page (docs/sms.md §3), with its
//! own words in both languages.

use ciam_core::sms::{SmsPolicy, SmsPolicyPatch};
use ciam_core::{CiamError, Lang};
use maud::{Markup, html};

use super::Console;
use super::policies::PolicyForm;
use crate::pages::forms::{Refused, field, form_error, number};

/// The form's words.
struct Words {
    title: &'static str,
    code_ttl_seconds: &'static str,
    resend_seconds: &'static str,
    mobile_daily_max: &'static str,
    ip_hourly_max: &'static str,
    global_hourly_max: &'static str,
    max_checks: &'static str,
    mobile_daily_max_checks: &'static str,
    allowed_prefixes: &'static str,
    prefixes_hint: &'static str,
}

const EN: Words = Words {
    title: "SMS codes",
    code_ttl_seconds: "Code lifetime, seconds",
    resend_seconds: "Between codes to a number, seconds",
    mobile_daily_max: "Codes per number a day",
    ip_hourly_max: "Codes per address an hour",
    global_hourly_max: "Codes in all an hour",
    max_checks: "Tries per code",
    mobile_daily_max_checks: "Wrong entries per number a day",
    allowed_prefixes: "Countries codes go to",
    prefixes_hint: "E.164 prefixes such as +86, comma-separated; empty allows every number",
};

const ZH: Words = Words {
    title: "短信验证码",
    code_ttl_seconds: "验证码有效期(秒)",
    resend_seconds: "同一号码发送间隔(秒)",
    mobile_daily_max: "每个号码每日条数",
    ip_hourly_max: "每个地址每小时条数",
    global_hourly_max: "全部每小时条数",
    max_checks: "每个验证码可尝试次数",
    mobile_daily_max_checks: "每个号码每日错误次数",
    allowed_prefixes: "可发送的国家和地区",
    prefixes_hint: "E.164 前缀,如 +86,以逗号分隔;留空则不限",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    }
}

/// The section's title.
pub(super) fn title(lang: Lang) -> &'static str {
    words(lang).title
}

/// The stored policy as the form shows it.
pub(super) fn fill(form: &mut PolicyForm, policy: &SmsPolicy) {
    form.code_ttl_seconds = policy.code_ttl_seconds.to_string();
    form.resend_seconds = policy.resend_seconds.to_string();
    form.mobile_daily_max = policy.mobile_daily_max.to_string();
    form.ip_hourly_max = policy.ip_hourly_max.to_string();
    form.global_hourly_max = policy.global_hourly_max.to_string();
    form.max_checks = policy.max_checks.to_string();
    form.mobile_daily_max_checks = policy.mobile_daily_max_checks.to_string();
    form.allowed_prefixes = policy.allowed_prefixes.join(", ");
}

/// The form's fields.
pub(super) fn fields(console: &Console, form: &PolicyForm, refused: Option<&Refused>) -> Markup {
    let w = words(console.lang);
    html! {
        div.grid {
            (field(w.code_ttl_seconds, "code_ttl_seconds", &form.code_ttl_seconds, "number", refused))
            (field(w.resend_seconds, "resend_seconds", &form.resend_seconds, "number", refused))
            (field(w.mobile_daily_max, "mobile_daily_max", &form.mobile_daily_max, "number", refused))
            (field(w.ip_hourly_max, "ip_hourly_max", &form.ip_hourly_max, "number", refused))
            (field(w.global_hourly_max, "global_hourly_max", &form.global_hourly_max, "number", refused))
            (field(w.max_checks, "max_checks", &form.max_checks, "number", refused))
            (field(w.mobile_daily_max_checks, "mobile_daily_max_checks", &form.mobile_daily_max_checks, "number", refused))
        }
        (field(w.allowed_prefixes, "allowed_prefixes", &form.allowed_prefixes, "text", refused))
        p.muted { (w.prefixes_hint) }
        (form_error(refused, &[
            "code_ttl_seconds", "resend_seconds", "mobile_daily_max", "ip_hourly_max", "global_hourly_max",
            "max_checks", "mobile_daily_max_checks", "allowed_prefixes",
        ]))
    }
}

/// What the form asks of the domain.
pub(super) fn patch(form: &PolicyForm) -> Result<SmsPolicyPatch, CiamError> {
    let prefixes = form.allowed_prefixes.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned);
    Ok(SmsPolicyPatch {
        code_ttl_seconds: number("code_ttl_seconds", &form.code_ttl_seconds)?,
        resend_seconds: number("resend_seconds", &form.resend_seconds)?,
        mobile_daily_max: number("mobile_daily_max", &form.mobile_daily_max)?,
        ip_hourly_max: number("ip_hourly_max", &form.ip_hourly_max)?,
        global_hourly_max: number("global_hourly_max", &form.global_hourly_max)?,
        max_checks: number("max_checks", &form.max_checks)?,
        mobile_daily_max_checks: number("mobile_daily_max_checks", &form.mobile_daily_max_checks)?,
        allowed_prefixes: Some(prefixes.collect()),
    })
}
