//! Operator actions shared by the admin API and the CLI: apps, members,
//! users, unlock, policies, the audit log. Input is checked here, once,
//! whichever door it came in by.

pub mod console;
mod inputs;
pub mod retention;

pub use inputs::{AppInput, AuditFilter, UserFilter, UserInput, check_user_id};
use inputs::{check_email, check_text, page_limit};

use std::net::IpAddr;

use crate::clock::UnixTime;
use crate::error::{CiamError, ErrorCode, FieldRefusal, Lang, Localised, Reason, Refusal};
use crate::mobile::Mobile;
use crate::model::{
    App, AppAccess, AuditEntry, AuditQuery, ClientId, ClientType, LockKey, OidcClient, SigningAlg, Signup, User,
    UserId, audit_text,
};
use crate::policy::{
    LockoutPolicy, LockoutPolicyPatch, PasswordPolicy, PasswordPolicyPatch, ThrottlePolicy, ThrottlePolicyPatch,
};
use crate::service::Ciam;
use crate::store::StoreError;
use crate::token::{OpaqueToken, new_user_id, sha256_hex};

/// Listed when a listing call gives no `limit`.
pub const DEFAULT_PAGE: u32 = 100;
/// The most a listing call returns at once.
pub const MAX_PAGE: u32 = 1000;
/// The largest `offset` of a listing (a 32-bit signed integer).
pub const MAX_OFFSET: u32 = i32::MAX as u32;

/// Default session_token lifetime (the seed's `expire`).
pub const DEFAULT_SESSION_TTL: i64 = 432_000;
/// Default id_token lifetime.
pub const DEFAULT_ID_TOKEN_TTL: i64 = 300;
/// Longest session_token lifetime an app may set (one year).
pub const MAX_SESSION_TTL: i64 = 31_536_000;

/// `422` for `field`, saying why.
pub fn invalid(field: &str, why: Reason) -> CiamError {
    CiamError::Invalid(FieldRefusal { field: field.to_owned(), why })
}

/// "must be between 1 and `most` seconds".
fn seconds_between(most: i64) -> Reason {
    Reason::new(format!("must be between 1 and {most} seconds"), format!("必须在 1 到 {most} 秒之间"))
}

fn not_a_phone_number() -> Reason {
    Reason::new("not a valid phone number", "不是有效的手机号")
}

/// The kinds of resource the admin calls address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An app.
    App,
    /// A user.
    User,
    /// A user's assignment to an app.
    Membership,
}

impl Resource {
    /// The kind's name in English and in Chinese.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Resource::App => ("app", "应用"),
            Resource::User => ("user", "用户"),
            Resource::Membership => ("membership", "成员关系"),
        }
    }
}

/// `404` for a kind of resource.
pub fn not_found(kind: Resource) -> CiamError {
    let (en, zh) = kind.names();
    CiamError::Refused(Refusal::with_args(ErrorCode::AdminNotFound, [Localised::new(en, zh)]))
}

/// Identifiers are printable; anything else names nothing (and must not
/// reach the database, which may refuse it).
fn known(kind: Resource, id: &str) -> Result<(), CiamError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(not_found(kind));
    }
    Ok(())
}

fn known_app(client_id: &str) -> Result<ClientId, CiamError> {
    known(Resource::App, client_id).map(|()| ClientId::new(client_id))
}

fn known_user(id: &str) -> Result<UserId, CiamError> {
    known(Resource::User, id).map(|()| UserId::new(id))
}

fn conflict_to_taken(e: StoreError) -> CiamError {
    match e {
        StoreError::Conflict(_) => CiamError::refused(ErrorCode::AdminMobileTaken),
        other => other.into(),
    }
}

impl Ciam {
    /// Registers an app; the server makes its 32-character client id, and
    /// for a confidential client its secret, answered here once.
    pub async fn create_app(&self, input: AppInput) -> Result<(App, Option<OpaqueToken>), CiamError> {
        if input.name.is_none() {
            return Err(invalid("name", Reason::required()));
        }
        let mut app = App {
            client_id: ClientId::new(OpaqueToken::generate(32)?.expose()),
            name: String::new(),
            enabled: true,
            password_expiry_check: false,
            access: AppAccess::All,
            session_ttl: DEFAULT_SESSION_TTL,
            id_token_ttl: DEFAULT_ID_TOKEN_TTL,
            id_token_alg: SigningAlg::default(),
            created_at: self.now(),
            oidc: OidcClient::default(),
            signup: Signup::default(),
        };
        input.apply(&mut app)?;
        let secret = match app.oidc.client_type {
            ClientType::Confidential => Some(OpaqueToken::generate(crate::oidc::GRANT_TOKEN_LEN)?),
            ClientType::Public => None,
        };
        app.oidc.secret_digest = secret.as_ref().map(|s| sha256_hex(s.expose().as_bytes()));
        self.store().insert_app(&app).await?;
        Ok((app, secret))
    }

    /// Changes an app's fields.
    pub async fn update_app(&self, client_id: &str, input: AppInput) -> Result<App, CiamError> {
        let mut app = self.app(client_id).await?;
        input.apply(&mut app)?;
        if !self.store().update_app(&app).await? {
            return Err(not_found(Resource::App));
        }
        self.forget_app(&app.client_id);
        Ok(app)
    }

    /// One app, enabled or not.
    pub async fn app(&self, client_id: &str) -> Result<App, CiamError> {
        self.store().get_app(&known_app(client_id)?).await?.ok_or_else(|| not_found(Resource::App))
    }

    /// Every app, oldest first.
    pub async fn apps(&self) -> Result<Vec<App>, CiamError> {
        Ok(self.store().list_apps().await?)
    }

    /// Deletes an app.
    pub async fn delete_app(&self, client_id: &str) -> Result<(), CiamError> {
        let client_id = known_app(client_id)?;
        let deleted = self.store().delete_app(&client_id).await?;
        self.forget_app(&client_id);
        if deleted { Ok(()) } else { Err(not_found(Resource::App)) }
    }

    /// Assigns or unassigns a user.
    pub async fn set_member(&self, client_id: &str, user_id: &str, member: bool) -> Result<(), CiamError> {
        let app = self.app(client_id).await?;
        let user = self.user(user_id).await?;
        if member {
            self.store().add_member(&app.client_id, &user.id).await?;
        } else if !self.store().remove_member(&app.client_id, &user.id).await? {
            return Err(not_found(Resource::Membership));
        }
        Ok(())
    }

    /// One user.
    pub async fn user(&self, id: &str) -> Result<User, CiamError> {
        self.store().get_user(&known_user(id)?).await?.ok_or_else(|| not_found(Resource::User))
    }

    /// Users, oldest first. A mobile that is no phone number matches nobody.
    pub async fn users(&self, filter: &UserFilter) -> Result<Vec<User>, CiamError> {
        let limit = page_limit(filter.limit)?;
        let offset = filter.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(invalid("offset", Reason::between(0, MAX_OFFSET)));
        }
        let mobile = match filter.mobile.as_deref() {
            Some(typed) => match self.normalise_mobile(typed) {
                Some(mobile) => Some(mobile),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        Ok(self.store().list_users(mobile.as_ref(), limit, offset).await?)
    }

    /// Normalises a mobile for lookups; `None` when it is no phone number.
    fn normalise_mobile(&self, typed: &str) -> Option<Mobile> {
        Mobile::parse(typed, self.config().region)
    }

    /// A hash brought from another system (docs/api.md §10), as it is stored:
    /// refused with 422 naming the parameter when it is malformed, of an
    /// unknown kind, or beyond the bounds on its cost.
    pub fn importable_hash(&self, exported: &str) -> Result<String, CiamError> {
        let refuse = |e: crate::hashes::Refused| {
            invalid("password_hash", Reason::new(e.to_string(), format!("无法使用此哈希:{e}")))
        };
        let stored = crate::hashes::from_export(exported).map_err(refuse)?;
        self.hasher().check_importable(&stored).map_err(refuse)?;
        Ok(stored)
    }

    async fn password_input(&self, input: &UserInput) -> Result<Option<String>, CiamError> {
        match (&input.password, &input.password_hash) {
            (Some(_), Some(_)) => Err(invalid(
                "password",
                Reason::new("give either password or password_hash, not both", "password 和 password_hash 只能给一个"),
            )),
            (Some(pw), None) => {
                self.password_policy()
                    .await?
                    .check(pw)
                    .map_err(|e| invalid("password", Reason::new(e.message(Lang::En), e.message(Lang::Zh))))?;
                Ok(Some(self.hasher().hash(pw, None).await?))
            }
            (None, Some(exported)) => Ok(Some(self.importable_hash(exported)?)),
            (None, None) => Ok(None),
        }
    }

    /// Creates a user from a password (checked against the policy) or an
    /// imported PHC hash.
    pub async fn create_user(&self, input: UserInput) -> Result<User, CiamError> {
        let checked = self.user_from(&input, UserId::new(new_user_id()), String::new(), self.now())?;
        let hash = self.password_input(&input).await?.ok_or_else(|| {
            invalid("password", Reason::new("password or password_hash is required", "需要 password 或 password_hash"))
        })?;
        let user = User { password_hash: hash, ..checked };
        self.store().insert_user(&user).await.map_err(conflict_to_taken)?;
        Ok(user)
    }

    /// A new user of `input`'s fields, checked: the mobile (required, in
    /// any spelling), the texts' lengths and the e-mail's shape.
    pub(crate) fn user_from(
        &self,
        input: &UserInput,
        id: UserId,
        password_hash: String,
        now: UnixTime,
    ) -> Result<User, CiamError> {
        let typed = input.mobile.as_deref().ok_or_else(|| invalid("mobile", Reason::required()))?;
        let mobile = self.normalise_mobile(typed).ok_or_else(|| invalid("mobile", not_a_phone_number()))?;
        let (user_name, name, email) =
            (input.user_name.clone().flatten(), input.name.clone().flatten(), input.email.clone().flatten());
        check_text("user_name", &user_name, 128)?;
        check_text("name", &name, 128)?;
        check_email(&email)?;
        Ok(User {
            id,
            mobile,
            user_name,
            name,
            email,
            disabled: input.disabled.unwrap_or(false),
            password_hash,
            password_changed_at: input.password_changed_at.unwrap_or(now),
            created_at: now,
            updated_at: now,
        })
    }

    /// Changes a user. A new password (or hash), or disabling, revokes the
    /// user's sessions.
    pub async fn update_user(&self, id: &str, input: UserInput) -> Result<User, CiamError> {
        let mut user = self.user(id).await?;
        if let Some(typed) = &input.mobile {
            let mobile = self.normalise_mobile(typed).ok_or_else(|| invalid("mobile", not_a_phone_number()))?;
            user.mobile = mobile;
        }
        if let Some(v) = input.user_name.clone() {
            check_text("user_name", &v, 128)?;
            user.user_name = v;
        }
        if let Some(v) = input.name.clone() {
            check_text("name", &v, 128)?;
            user.name = v;
        }
        if let Some(v) = input.email.clone() {
            check_email(&v)?;
            user.email = v;
        }
        let now = self.now();
        let newly_disabled = input.disabled == Some(true) && !user.disabled;
        if let Some(v) = input.disabled {
            user.disabled = v;
        }
        let new_hash = self.password_input(&input).await?;
        if let Some(changed_at) = input.password_changed_at {
            user.password_changed_at = changed_at;
        }
        user.updated_at = now;
        if !self.store().update_user(&user).await.map_err(conflict_to_taken)? {
            return Err(not_found(Resource::User));
        }
        if let Some(hash) = new_hash {
            let changed_at = input.password_changed_at.unwrap_or(now);
            let history = self.password_policy().await?.history;
            self.store().set_password(&user.id, &hash, changed_at, history).await?;
            user.password_hash = hash;
            user.password_changed_at = changed_at;
        }
        if newly_disabled {
            self.store().delete_user_sessions(&user.id).await?;
        }
        Ok(user)
    }

    /// Deletes a user.
    pub async fn delete_user(&self, id: &str) -> Result<(), CiamError> {
        if self.store().delete_user(&known_user(id)?).await? { Ok(()) } else { Err(not_found(Resource::User)) }
    }

    /// Ends all of a user's sessions; returns how many there were.
    pub async fn revoke_sessions(&self, id: &str) -> Result<u64, CiamError> {
        let user = self.user(id).await?;
        Ok(self.store().delete_user_sessions(&user.id).await?)
    }

    /// Lifts the lock of a user's account and forgets its failures.
    pub async fn unlock_user(&self, id: &str) -> Result<(), CiamError> {
        let user = self.user(id).await?;
        self.unlock(&user.mobile).await
    }

    /// Lifts the lock of a user's mobile number and forgets its failures;
    /// returns it in E.164 with the user's id. A number nobody has is
    /// refused as an unknown user unless `unregistered` says to clear its
    /// counts all the same (unknown numbers count down and lock too).
    pub async fn unlock_mobile(&self, typed: &str, unregistered: bool) -> Result<(Mobile, Option<UserId>), CiamError> {
        let mobile = self.normalise_mobile(typed).ok_or_else(|| invalid("mobile", not_a_phone_number()))?;
        let user = self.store().list_users(Some(&mobile), 1, 0).await?.into_iter().next().map(|u| u.id);
        if user.is_none() && !unregistered {
            return Err(not_found(Resource::User));
        }
        self.unlock(&mobile).await?;
        Ok((mobile, user))
    }

    async fn unlock(&self, mobile: &Mobile) -> Result<(), CiamError> {
        Ok(self.store().unlock_account(&LockKey::account(mobile)).await?)
    }

    /// Changes the fields of the password policy that `patch` sets.
    pub async fn update_password_policy(&self, patch: PasswordPolicyPatch) -> Result<PasswordPolicy, CiamError> {
        let policy = patch.apply(self.password_policy().await?);
        policy.validate().map_err(|(field, why)| invalid(field, why))?;
        self.set_password_policy(&policy).await?;
        Ok(policy)
    }

    /// Changes the fields of the lockout policy that `patch` sets.
    pub async fn update_lockout_policy(&self, patch: LockoutPolicyPatch) -> Result<LockoutPolicy, CiamError> {
        let policy = patch.apply(self.lockout_policy().await?);
        policy.validate().map_err(|(field, why)| invalid(field, why))?;
        self.set_lockout_policy(&policy).await?;
        Ok(policy)
    }

    /// Changes the fields of the address throttle that `patch` sets.
    pub async fn update_throttle_policy(&self, patch: ThrottlePolicyPatch) -> Result<ThrottlePolicy, CiamError> {
        let policy = patch.apply(self.throttle_policy().await?).map_err(|(field, why)| invalid(field, why))?;
        policy.validate().map_err(|(field, why)| invalid(field, why))?;
        self.set_throttle_policy(&policy).await?;
        Ok(policy)
    }

    /// Audit events, newest first. A mobile is matched in any spelling.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, CiamError> {
        let limit = page_limit(filter.limit)?;
        let mobile = match filter.mobile.as_deref() {
            // The log keeps no text that is no phone number: nothing matches it.
            Some(typed) => match self.normalise_mobile(typed) {
                Some(m) => Some(m.as_str().to_owned()),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        let user_id = filter.user_id.as_deref().map(|id| UserId::new(audit_text(id, 128)));
        // Like a mobile that is no number, an `ip` that is no address
        // matches no event.
        let ip = match filter.ip.as_deref().map(str::trim) {
            Some(typed) => match typed.parse::<IpAddr>() {
                Ok(ip) => Some(ip.to_canonical().to_string()),
                Err(_) => return Ok(Vec::new()),
            },
            None => None,
        };
        let outcome = filter.outcome.as_deref().map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned);
        let (since, until, before_id) = (filter.since, filter.until, filter.before_id);
        let query = AuditQuery { mobile, user_id, ip, outcome, since, until, before_id, limit };
        Ok(self.store().list_audit(&query).await?)
    }
}
