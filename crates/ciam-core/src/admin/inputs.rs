//! What an operator sends: the fields of an app, a user, a listing's
//! filter, each checked here once, whichever door it came in by.

use crate::clock::UnixTime;
use crate::error::{CiamError, Reason};
use crate::keys::MAX_ID_TOKEN_TTL;
use crate::model::{App, AppAccess, ClientType, SigningAlg, UserId};
use crate::oidc::clients::{check_uri, check_uris};
use crate::password::Password;

use super::{DEFAULT_PAGE, MAX_PAGE, MAX_SESSION_TTL, invalid, seconds_between};

/// Fields of an app an operator sets; `None` keeps the current (or default).
#[derive(Debug, Clone, Default)]
pub struct AppInput {
    /// Display name.
    pub name: Option<String>,
    /// Whether clients may use it.
    pub enabled: Option<bool>,
    /// Whether logins check password age.
    pub password_expiry_check: Option<bool>,
    /// `all` or `assigned`.
    pub access: Option<AppAccess>,
    /// session_token lifetime, seconds.
    pub session_ttl: Option<i64>,
    /// id_token lifetime, seconds.
    pub id_token_ttl: Option<i64>,
    /// How its id_tokens are signed.
    pub id_token_alg: Option<SigningAlg>,
    /// OpenID Connect: public or confidential.
    pub client_type: Option<ClientType>,
    /// OpenID Connect: where codes may be sent.
    pub redirect_uris: Option<Vec<String>>,
    /// OpenID Connect: where a logout may return.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// OpenID Connect: where an SSO ticket sends the browser; the inner
    /// `None` clears it.
    pub initiate_login_uri: Option<Option<String>>,
    /// Whether people may register through it with an SMS code.
    pub self_registration: Option<bool>,
    /// Whether an SMS login code to an unregistered number creates the user.
    pub sms_auto_register: Option<bool>,
}

/// Which users to list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only the user with this mobile, in any spelling.
    pub mobile: Option<String>,
    /// At most this many (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub limit: Option<u32>,
    /// Skip this many, oldest first.
    pub offset: Option<u32>,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events for this mobile, in any spelling.
    pub mobile: Option<String>,
    /// Only events for this user.
    pub user_id: Option<String>,
    /// Only events from this address.
    pub ip: Option<String>,
    /// Only events with this outcome (a status or an error code).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<UnixTime>,
    /// Only events before this time.
    pub until: Option<UnixTime>,
    /// Only events older than the one with this id (the next page).
    pub before_id: Option<i64>,
    /// At most this many (default [`DEFAULT_PAGE`], at most [`MAX_PAGE`]).
    pub limit: Option<u32>,
}

/// Fields of a user an operator sets. For optional text fields the outer
/// `Option` says whether the field was given, the inner one clears it.
#[derive(Debug, Clone, Default)]
pub struct UserInput {
    /// Mobile as typed; normalised to E.164.
    pub mobile: Option<String>,
    /// A password to hash (checked against the policy).
    pub password: Option<Password>,
    /// A PHC hash to import as is.
    pub password_hash: Option<String>,
    /// Login name.
    pub user_name: Option<Option<String>>,
    /// Display name.
    pub name: Option<Option<String>>,
    /// E-mail.
    pub email: Option<Option<String>>,
    /// Disabled flag.
    pub disabled: Option<bool>,
    /// When the password was set (RFC 3339 parsed by the caller).
    pub password_changed_at: Option<i64>,
}

/// A user id brought from another system (its subject, kept so that apps
/// keep recognising the user): 1 to 128 visible ASCII characters, none of
/// `/ ? # %`.
pub fn check_user_id(id: &str) -> Result<UserId, CiamError> {
    let fits = (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'%'));
    if fits {
        Ok(UserId::new(id.to_owned()))
    } else {
        Err(invalid(
            "id",
            Reason::new(
                "1 to 128 visible ASCII characters, none of / ? # %",
                "1 到 128 个可见 ASCII 字符，不含 / ? # %",
            ),
        ))
    }
}

/// A listing's `limit`: [`DEFAULT_PAGE`] when not given, refused outside
/// 1 to [`MAX_PAGE`].
pub(super) fn page_limit(limit: Option<u32>) -> Result<u32, CiamError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(invalid("limit", Reason::between(1, MAX_PAGE))),
    }
}

pub(super) fn check_text(field: &str, value: &Option<String>, max: usize) -> Result<(), CiamError> {
    match value {
        Some(v) if v.chars().count() > max => {
            Err(invalid(field, Reason::new(format!("at most {max} characters"), format!("最多 {max} 个字符"))))
        }
        Some(v) if v.chars().any(char::is_control) => {
            Err(invalid(field, Reason::new("control characters are not allowed", "不能包含控制字符")))
        }
        _ => Ok(()),
    }
}

pub(super) fn check_email(value: &Option<String>) -> Result<(), CiamError> {
    check_text("email", value, 254)?;
    match value {
        Some(v)
            if !v.is_empty()
                && (v.split('@').count() != 2 || v.starts_with('@') || v.ends_with('@') || v.contains(' ')) =>
        {
            Err(invalid("email", Reason::new("not an e-mail address", "不是有效的电子邮件地址")))
        }
        _ => Ok(()),
    }
}

impl AppInput {
    pub(super) fn apply(self, app: &mut App) -> Result<(), CiamError> {
        if let Some(name) = &self.name {
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(invalid("name", Reason::new("must not be empty", "不能为空")));
            }
            check_text("name", &Some(name.clone()), 128)?;
            app.name = name;
        }
        if let Some(v) = self.enabled {
            app.enabled = v;
        }
        if let Some(v) = self.password_expiry_check {
            app.password_expiry_check = v;
        }
        if let Some(v) = self.access {
            app.access = v;
        }
        if let Some(v) = self.self_registration {
            app.signup.self_registration = v;
        }
        if let Some(v) = self.sms_auto_register {
            app.signup.sms_auto_register = v;
        }
        if let Some(v) = self.id_token_alg {
            app.id_token_alg = v;
        }
        if let Some(v) = self.session_ttl {
            if !(1..=MAX_SESSION_TTL).contains(&v) {
                return Err(invalid("session_ttl", seconds_between(MAX_SESSION_TTL)));
            }
            app.session_ttl = v;
        }
        if let Some(v) = self.id_token_ttl {
            if !(1..=MAX_ID_TOKEN_TTL).contains(&v) {
                return Err(invalid("id_token_ttl", seconds_between(MAX_ID_TOKEN_TTL)));
            }
            app.id_token_ttl = v;
        }
        self.apply_client(app)
    }

    /// The fields of an app as an OpenID Connect client (docs/oidc.md).
    fn apply_client(self, app: &mut App) -> Result<(), CiamError> {
        let oidc = &mut app.oidc;
        if let Some(uris) = self.redirect_uris {
            check_uris("redirect_uris", &uris)?;
            oidc.redirect_uris = uris;
        }
        if let Some(uris) = self.post_logout_redirect_uris {
            check_uris("post_logout_redirect_uris", &uris)?;
            oidc.post_logout_redirect_uris = uris;
        }
        if let Some(uri) = self.initiate_login_uri {
            if let Some(uri) = &uri {
                check_uri(uri).map_err(|why| invalid("initiate_login_uri", why))?;
            }
            oidc.initiate_login_uri = uri;
        }
        if let Some(client_type) = self.client_type {
            if client_type == ClientType::Public {
                // A public client has no secret; made confidential again,
                // it needs a new one.
                oidc.secret_digest = None;
            }
            oidc.client_type = client_type;
        }
        Ok(())
    }
}
