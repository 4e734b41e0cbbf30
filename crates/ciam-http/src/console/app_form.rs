//! The app form of the new-app and edit pages: its fields (the app's, its
//! id_token algorithm, its sign-up switches for SMS codes, and its OpenID
//! Connect client fields: client type, redirect URIs one a line, initiate
//! login URI), read as strictly as the admin API reads them and drawn with
//! the refusal next to its field.

use ciam_core::admin::{AppInput, invalid};
use ciam_core::model::{App, AppAccess, ClientType, SigningAlg};
use ciam_core::oidc::clients::check_uri;
use ciam_core::{CiamError, Reason};
use maud::{Markup, html};
use serde::Deserialize;

use super::Console;
use crate::pages::forms::{Refused, checkbox, choice, field, form_error, lines, number, one_of, textarea, ticked};

/// The app form's fields. A text field the form did not send is kept as
/// it is (as the API keeps a field left out); a checkbox not sent is
/// unticked.
#[derive(Deserialize, Default)]
pub(crate) struct AppForm {
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    password_expiry_check: Option<String>,
    #[serde(default)]
    self_registration: Option<String>,
    #[serde(default)]
    sms_auto_register: Option<String>,
    #[serde(default)]
    access: String,
    #[serde(default)]
    session_ttl: String,
    #[serde(default)]
    id_token_ttl: String,
    /// `RS256` or `EdDSA`; empty: the API's default, or kept.
    #[serde(default)]
    id_token_alg: String,
    /// `public` or `confidential`; empty: the API's default, or kept.
    #[serde(default)]
    client_type: String,
    /// One a line.
    #[serde(default)]
    redirect_uris: Option<String>,
    /// One a line.
    #[serde(default)]
    post_logout_redirect_uris: Option<String>,
    /// Empty clears it.
    #[serde(default)]
    initiate_login_uri: Option<String>,
}

impl AppForm {
    /// The form of a stored app.
    pub(super) fn of(app: &App) -> Self {
        AppForm {
            name: app.name.clone(),
            enabled: app.enabled.then(|| "true".to_owned()),
            password_expiry_check: app.password_expiry_check.then(|| "true".to_owned()),
            self_registration: app.signup.self_registration.then(|| "true".to_owned()),
            sms_auto_register: app.signup.sms_auto_register.then(|| "true".to_owned()),
            access: app.access.as_str().to_owned(),
            session_ttl: app.session_ttl.to_string(),
            id_token_ttl: app.id_token_ttl.to_string(),
            id_token_alg: app.id_token_alg.as_str().to_owned(),
            client_type: app.oidc.client_type.as_str().to_owned(),
            redirect_uris: Some(app.oidc.redirect_uris.join("\n")),
            post_logout_redirect_uris: Some(app.oidc.post_logout_redirect_uris.join("\n")),
            initiate_login_uri: Some(app.oidc.initiate_login_uri.clone().unwrap_or_default()),
        }
    }

    /// What was typed, shown again: a field the form left empty or did not
    /// send (and so keeps) shows its stored value.
    pub(super) fn or_stored(&self, stored: &AppForm) -> AppForm {
        let or = |typed: &Option<String>, kept: &Option<String>| typed.clone().or_else(|| kept.clone());
        let or_text = |typed: &String, kept: &String| if typed.is_empty() { kept } else { typed }.clone();
        AppForm {
            name: self.name.clone(),
            enabled: self.enabled.clone(),
            password_expiry_check: self.password_expiry_check.clone(),
            self_registration: self.self_registration.clone(),
            sms_auto_register: self.sms_auto_register.clone(),
            access: or_text(&self.access, &stored.access),
            session_ttl: or_text(&self.session_ttl, &stored.session_ttl),
            id_token_ttl: or_text(&self.id_token_ttl, &stored.id_token_ttl),
            id_token_alg: or_text(&self.id_token_alg, &stored.id_token_alg),
            client_type: or_text(&self.client_type, &stored.client_type),
            redirect_uris: or(&self.redirect_uris, &stored.redirect_uris),
            post_logout_redirect_uris: or(&self.post_logout_redirect_uris, &stored.post_logout_redirect_uris),
            initiate_login_uri: or(&self.initiate_login_uri, &stored.initiate_login_uri),
        }
    }

    /// What the form asks of the domain.
    pub(super) fn input(&self) -> Result<AppInput, CiamError> {
        Ok(AppInput {
            name: Some(self.name.clone()),
            enabled: Some(ticked("enabled", self.enabled.as_deref())?),
            password_expiry_check: Some(ticked("password_expiry_check", self.password_expiry_check.as_deref())?),
            // Not sent: the API's default, or kept.
            access: match self.access.as_str() {
                "" => None,
                access => {
                    Some(AppAccess::parse(access).ok_or_else(|| invalid("access", one_of(&["all", "assigned"])))?)
                }
            },
            session_ttl: number("session_ttl", &self.session_ttl)?,
            id_token_ttl: number("id_token_ttl", &self.id_token_ttl)?,
            id_token_alg: match self.id_token_alg.as_str() {
                "" => None,
                alg => {
                    Some(SigningAlg::parse(alg).ok_or_else(|| invalid("id_token_alg", one_of(&["RS256", "EdDSA"])))?)
                }
            },
            client_type: match self.client_type.as_str() {
                "" => None,
                kind => Some(
                    ClientType::parse(kind)
                        .ok_or_else(|| invalid("client_type", one_of(&["public", "confidential"])))?,
                ),
            },
            redirect_uris: self.redirect_uris.as_deref().map(lines),
            post_logout_redirect_uris: self.post_logout_redirect_uris.as_deref().map(lines),
            initiate_login_uri: self.initiate_login_uri.as_deref().map(|uri| {
                let uri = uri.trim();
                (!uri.is_empty()).then(|| uri.to_owned())
            }),
            self_registration: Some(ticked("self_registration", self.self_registration.as_deref())?),
            sms_auto_register: Some(ticked("sms_auto_register", self.sms_auto_register.as_deref())?),
        })
    }

    /// `error`, where it refuses one URI of a list, naming the line it
    /// refuses (the domain says why, not which of the lines).
    pub(super) fn naming_the_line(&self, error: CiamError) -> CiamError {
        let CiamError::Invalid(refusal) = &error else { return error };
        let typed = match refusal.field.as_str() {
            "redirect_uris" => &self.redirect_uris,
            "post_logout_redirect_uris" => &self.post_logout_redirect_uris,
            _ => return error,
        };
        let refused = typed
            .as_deref()
            .map(lines)
            .unwrap_or_default()
            .into_iter()
            .find(|uri| check_uri(uri).err().as_ref() == Some(&refusal.why));
        match refused {
            Some(uri) => invalid(
                &refusal.field,
                Reason::new(format!("{uri}: {}", refusal.why.en), format!("{uri}：{}", refusal.why.zh)),
            ),
            None => error,
        }
    }
}

/// The fields of an app, for the new-app (`new`) and edit forms.
pub(super) fn fields(console: &Console, form: &AppForm, error: Option<&Refused>, new: bool) -> Markup {
    let t = console.t;
    let types = [("public", t.client_public), ("confidential", t.client_confidential)];
    let algs = [("RS256", t.alg_rs256), ("EdDSA", t.alg_eddsa)];
    html! {
        div.grid {
            (field(t.name, "name", &form.name, "text", error))
            @if !new {
                (field(t.session_ttl, "session_ttl", &form.session_ttl, "number", error))
                (field(t.id_token_ttl, "id_token_ttl", &form.id_token_ttl, "number", error))
            }
            (choice(t.access, "access", &form.access, &[("all", t.access_all), ("assigned", t.access_assigned)], error))
            (choice(t.client_type, "client_type", &form.client_type, &types, error))
            (choice(t.id_token_alg, "id_token_alg", &form.id_token_alg, &algs, error))
        }
        @if !new { (checkbox(t.enabled, "enabled", ticked("", form.enabled.as_deref()).unwrap_or(false))) }
        (checkbox(
            t.password_expiry_check,
            "password_expiry_check",
            ticked("", form.password_expiry_check.as_deref()).unwrap_or(false)
        ))
        (checkbox(t.self_registration, "self_registration", ticked("", form.self_registration.as_deref()).unwrap_or(false)))
        (checkbox(t.sms_auto_register, "sms_auto_register", ticked("", form.sms_auto_register.as_deref()).unwrap_or(false)))
        (client_fields(console, form, error))
        (form_error(error, &FIELDS))
    }
}

/// The fields of [`fields`] that show their own refusal.
const FIELDS: [&str; 9] = [
    "name",
    "session_ttl",
    "id_token_ttl",
    "id_token_alg",
    "access",
    "client_type",
    "redirect_uris",
    "post_logout_redirect_uris",
    "initiate_login_uri",
];

/// The URIs of an app as an OpenID Connect client.
fn client_fields(console: &Console, form: &AppForm, error: Option<&Refused>) -> Markup {
    let t = console.t;
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    html! {
        div.columns {
            (textarea(t.redirect_uris, "redirect_uris", &text(&form.redirect_uris), t.uris_hint, error))
            (textarea(
                t.post_logout_redirect_uris,
                "post_logout_redirect_uris",
                &text(&form.post_logout_redirect_uris),
                t.uris_hint,
                error
            ))
        }
        (field(t.initiate_login_uri, "initiate_login_uri", &text(&form.initiate_login_uri), "url", error))
        p.muted { (t.uri_rules) }
    }
}

#[cfg(test)]
mod tests {
    use ciam_core::Lang;

    use super::*;

    fn form(redirect_uris: Option<&str>, initiate_login_uri: Option<&str>) -> AppForm {
        AppForm {
            name: "Shop".into(),
            redirect_uris: redirect_uris.map(str::to_owned),
            initiate_login_uri: initiate_login_uri.map(str::to_owned),
            ..AppForm::default()
        }
    }

    #[test]
    fn uris_are_one_a_line_and_a_field_not_sent_is_kept() {
        let input =
            form(Some("https://a.example/cb\r\n\r\nhttp://127.0.0.1/cb\r\n"), Some("  ")).input().expect("read");
        assert_eq!(input.redirect_uris.expect("sent"), ["https://a.example/cb", "http://127.0.0.1/cb"]);
        assert_eq!(input.initiate_login_uri, Some(None), "empty clears it");
        let kept = form(None, None).input().expect("read");
        assert_eq!((kept.redirect_uris, kept.post_logout_redirect_uris, kept.initiate_login_uri), (None, None, None));
        assert_eq!(kept.client_type, None);
        let typed = AppForm { client_type: "secret".into(), ..form(None, None) };
        let refused = typed.input().err().and_then(|e| Refused::of(&e, Lang::En));
        assert!(matches!(refused, Some(Refused::Field { name, .. }) if name == "client_type"));
    }

    #[test]
    fn the_id_token_algorithm_is_one_of_two_and_kept_when_not_sent() {
        let chosen = AppForm { id_token_alg: "EdDSA".into(), ..form(None, None) };
        assert_eq!(chosen.input().expect("read").id_token_alg, Some(SigningAlg::EdDSA));
        assert_eq!(form(None, None).input().expect("read").id_token_alg, None, "not sent: kept");
        let typed = AppForm { id_token_alg: "HS256".into(), ..form(None, None) };
        let refused = typed.input().err().and_then(|e| Refused::of(&e, Lang::En));
        assert!(matches!(refused, Some(Refused::Field { name, .. }) if name == "id_token_alg"));
    }

    #[test]
    fn a_refused_edit_shows_the_stored_value_of_a_field_it_keeps() {
        let stored = AppForm {
            client_type: "confidential".into(),
            session_ttl: "60".into(),
            ..form(Some("https://a.example/cb"), Some("https://a.example/start"))
        };
        let shown = form(None, Some("")).or_stored(&stored);
        assert_eq!(shown.redirect_uris.as_deref(), Some("https://a.example/cb"), "not sent: kept");
        assert_eq!(shown.initiate_login_uri.as_deref(), Some(""), "sent empty: cleared");
        assert_eq!((shown.client_type.as_str(), shown.session_ttl.as_str()), ("confidential", "60"));
    }

    #[test]
    fn a_refused_uri_list_names_the_line_refused() {
        let typed = form(Some("https://a.example/cb\nhttp://b.example/cb"), None);
        let why = check_uri("http://b.example/cb").expect_err("refused");
        let named = typed.naming_the_line(invalid("redirect_uris", why.clone()));
        let shown = Refused::of(&named, Lang::En);
        let expected = "http://b.example/cb: must be https, or http on a loopback address";
        assert_eq!(shown, Some(Refused::Field { name: "redirect_uris".into(), why: expected.into() }));
        // A refusal of the list as a whole, or of another field, is kept.
        let whole = typed.naming_the_line(invalid("redirect_uris", Reason::new("at most 20", "最多 20 个")));
        assert!(matches!(Refused::of(&whole, Lang::En), Some(Refused::Field { why, .. }) if why == "at most 20"));
        let other = typed.naming_the_line(invalid("name", why));
        assert!(
            matches!(Refused::of(&other, Lang::En), Some(Refused::Field { why, .. }) if why.starts_with("must be"))
        );
    }
}
