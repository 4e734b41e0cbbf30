//! Forms: reading a posted form within bounds, drawing its fields with the
//! refusal next to the field it names, and reading typed values
//! (checkboxes, numbers, text areas of one value a line) as strictly as
//! the admin API does.

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use ciam_core::{CiamError, ErrorCode, Lang, Reason};
use maud::{Markup, html};

/// The largest form accepted.
pub(crate) const FORM_LIMIT: usize = 64 * 1024;

/// A form's bytes, within [`FORM_LIMIT`] and [`crate::json::BODY_TIMEOUT`]:
/// a form that stops arriving is 408, one too large 413, one broken in
/// transit 400.
pub(crate) async fn read_form(body: Body) -> Result<Bytes, StatusCode> {
    match tokio::time::timeout(crate::json::BODY_TIMEOUT, axum::body::to_bytes(body, FORM_LIMIT)).await {
        Err(_) => Err(StatusCode::REQUEST_TIMEOUT),
        Ok(Err(e)) if crate::json::over_limit(&e) => Err(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Err(_)) => Err(StatusCode::BAD_REQUEST),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// Why a posted form was refused, as the page shows it: next to the field
/// it names, or above the form when it is the form's as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A field's value: its name and why, in the page's language.
    Field {
        /// The field, as the form names it.
        name: String,
        /// Why.
        why: String,
    },
    /// The form as a whole (a rule no one field breaks).
    Form(String),
}

impl Refused {
    /// How `error` is shown on a form in `lang`; `None` for a failure no
    /// form can fix (the database is down, say).
    pub fn of(error: &CiamError, lang: Lang) -> Option<Self> {
        if let Some(refusal) = error.invalid_field() {
            return Some(Refused::Field { name: refusal.field.clone(), why: refusal.why.get(lang).to_owned() });
        }
        match error {
            _ if error.code() == ErrorCode::AdminMobileTaken => {
                Some(Refused::Field { name: "mobile".into(), why: error.message(lang) })
            }
            CiamError::Refused(_) => Some(Refused::Form(error.message(lang))),
            _ => None,
        }
    }

    /// Why field `name` was refused, when the refusal is its.
    fn of_field(&self, name: &str) -> Option<&str> {
        match self {
            Refused::Field { name: field, why } if field == name => Some(why),
            _ => None,
        }
    }
}

/// Why field `name` was refused, when the form's refusal is its.
fn why_of<'a>(name: &str, refused: Option<&'a Refused>) -> Option<&'a str> {
    refused.and_then(|r| r.of_field(name))
}

/// A labelled text input, with its refusal under it when it has one.
pub(crate) fn field(label: &str, name: &str, value: &str, kind: &str, refused: Option<&Refused>) -> Markup {
    let why = why_of(name, refused);
    html! {
        label.field {
            span { (label) }
            input type=(kind) name=(name) value=(value) aria-invalid=[why.map(|_| "true")];
            @if let Some(why) = why { small.error { (why) } }
        }
    }
}

/// A labelled text area of one value a line, with `hint` and its refusal
/// under it when it has one.
pub(crate) fn textarea(label: &str, name: &str, value: &str, hint: &str, refused: Option<&Refused>) -> Markup {
    let why = why_of(name, refused);
    html! {
        label.field {
            span { (label) }
            textarea name=(name) rows="3" spellcheck="false" autocapitalize="off" autocomplete="off"
                aria-invalid=[why.map(|_| "true")] { (value) }
            small { (hint) }
            @if let Some(why) = why { small.error { (why) } }
        }
    }
}

/// A labelled choice of `options` (value, label), with its refusal under
/// it when it has one; the first is chosen when `current` is none of them.
pub(crate) fn choice(
    label: &str,
    name: &str,
    current: &str,
    options: &[(&str, &str)],
    refused: Option<&Refused>,
) -> Markup {
    let chosen = options.iter().find(|(value, _)| *value == current).or(options.first()).map(|(value, _)| *value);
    let why = why_of(name, refused);
    html! {
        label.field {
            span { (label) }
            select name=(name) aria-invalid=[why.map(|_| "true")] {
                @for (value, text) in options {
                    option value=(value) selected[Some(*value) == chosen] { (text) }
                }
            }
            @if let Some(why) = why { small.error { (why) } }
        }
    }
}

/// A checkbox.
pub(crate) fn checkbox(label: &str, name: &str, checked: bool) -> Markup {
    html! { label.check { input type="checkbox" name=(name) value="true" checked[checked]; span { (label) } } }
}

/// A form's refusal that no field of `fields` shows: above the button.
pub(crate) fn form_error(refused: Option<&Refused>, fields: &[&str]) -> Markup {
    match refused {
        Some(Refused::Field { name, why }) if !fields.contains(&name.as_str()) => html! {
            p.error role="alert" { code { (name) } ": " (why) }
        },
        Some(Refused::Form(why)) => html! { p.error role="alert" { (why) } },
        _ => html! {},
    }
}

/// A notice above a page's content.
pub(crate) fn notice(message: Option<&str>) -> Markup {
    html! { @if let Some(message) = message { p.notice role="status" { (message) } } }
}

/// A checkbox as posted: absent (unticked) or `true` (ticked); `false`
/// also reads as unticked, anything else is refused.
pub(crate) fn ticked(field: &str, value: Option<&str>) -> Result<bool, CiamError> {
    match value {
        None | Some("false") => Ok(false),
        Some("true" | "on") => Ok(true),
        Some(_) => Err(ciam_core::admin::invalid(field, one_of(&["true", "false"]))),
    }
}

/// A whole number typed in a form; text that is none is passed on for the
/// domain to refuse.
pub(crate) fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<Option<T>, CiamError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        let why = match text.parse::<i128>() {
            Ok(n) if n < 0 => Reason::new("must be 0 or more", "不能小于 0"),
            Ok(_) => Reason::new("is too large", "过大"),
            Err(_) => Reason::new("must be a whole number", "必须是整数"),
        };
        ciam_core::admin::invalid(field, why)
    })
}

/// "must be one of …" for a choice.
pub(crate) fn one_of(values: &[&str]) -> Reason {
    let list = values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(", ");
    Reason::new(format!("must be one of {list}"), format!("必须是 {list} 之一"))
}

/// A form's text field: trimmed, `None` when left empty.
pub(crate) fn nonblank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A text area's values: one a line (`\n` or `\r\n`), trimmed, blank lines
/// skipped.
pub(crate) fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect()
}

/// `text` for a URL's path segment or query value: everything but the
/// unreserved characters percent-encoded.
pub(crate) fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(result: Result<impl std::fmt::Debug, CiamError>) -> String {
        let error = result.expect_err("refused");
        match Refused::of(&error, Lang::En) {
            Some(Refused::Field { name, why }) => format!("{name}: {why}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_typed_number_is_read_or_refused_saying_why() {
        assert_eq!(number::<u32>("n", " 42 ").ok(), Some(Some(42)));
        assert_eq!(number::<u32>("n", "  ").ok(), Some(None), "left empty: not sent");
        assert_eq!(why(number::<u32>("n", "-1")), "n: must be 0 or more");
        assert_eq!(why(number::<u32>("n", "99999999999")), "n: is too large");
        assert_eq!(why(number::<u32>("n", "ten")), "n: must be a whole number");
    }

    #[test]
    fn a_checkbox_is_ticked_unticked_or_refused() {
        assert_eq!(ticked("enabled", None).ok(), Some(false));
        assert_eq!(ticked("enabled", Some("false")).ok(), Some(false));
        assert_eq!(ticked("enabled", Some("true")).ok(), Some(true));
        assert_eq!(ticked("enabled", Some("on")).ok(), Some(true));
        assert_eq!(why(ticked("enabled", Some("yes"))), "enabled: must be one of \"true\", \"false\"");
    }

    #[test]
    fn a_refusal_shows_at_its_field_or_above_the_form() {
        let taken = CiamError::refused(ErrorCode::AdminMobileTaken);
        assert!(matches!(Refused::of(&taken, Lang::En), Some(Refused::Field { name, .. }) if name == "mobile"));
        let whole = CiamError::refused(ErrorCode::PasswordReused);
        assert!(matches!(Refused::of(&whole, Lang::Zh), Some(Refused::Form(_))));
        assert_eq!(Refused::of(&CiamError::Internal("down".into()), Lang::En), None);
        let shown = Refused::Form("no".into());
        assert_eq!(form_error(Some(&shown), &[]).into_string(), r#"<p class="error" role="alert">no</p>"#);
        let at_field = Refused::Field { name: "a".into(), why: "bad".into() };
        assert_eq!(form_error(Some(&at_field), &["a"]).into_string(), "", "shown at its field instead");
        assert!(field("A", "a", "", "text", Some(&at_field)).into_string().contains("bad"));
        let area = textarea("A", "a", "x\ny", "one a line", Some(&at_field)).into_string();
        assert!(area.contains(r#"aria-invalid="true">x"#) && area.contains("bad"), "{area}");
        assert!(!textarea("B", "b", "", "", Some(&at_field)).into_string().contains("bad"), "not its refusal");
    }

    #[test]
    fn a_text_area_is_read_one_value_a_line() {
        assert_eq!(lines(" https://a/cb \r\n\r\nhttps://b/cb\n  \n"), ["https://a/cb", "https://b/cb"]);
        assert!(lines("").is_empty());
    }
}
