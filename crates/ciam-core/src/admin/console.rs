//! What the admin console shows beyond the admin API's calls, and its
//! sign-in sessions. Every change the console makes goes through the same
//! domain calls as the admin API; these are reads and the sessions.

use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::{ClientId, LockKey, User};
use crate::service::{Ciam, admin_token_matches};
use crate::store::ActivityCount;
use crate::token::{OpaqueToken, constant_time_eq};

/// How long a console session lasts.
pub const CONSOLE_SESSION_SECONDS: i64 = 8 * 3600;

/// The console session token's length.
const CONSOLE_TOKEN_LEN: usize = 43;

/// A signing key as the console shows it (never its private part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    /// The JWK `kid`.
    pub kid: String,
    /// What it signs with.
    pub alg: crate::model::SigningAlg,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key took over signing, if one has.
    pub retired_at: Option<UnixTime>,
    /// Until when it stays in the JWKS, once retired.
    pub publish_until: Option<UnixTime>,
}

/// A user whose account is locked for everyone now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedAccount {
    /// The user.
    pub user: User,
    /// When the lock ends.
    pub until: UnixTime,
}

impl Ciam {
    /// Login attempts in the last `hours` hours, counted by hour and
    /// outcome, from the audit log.
    pub async fn login_activity(&self, hours: u32) -> Result<Vec<ActivityCount>, CiamError> {
        let this_hour = self.now().div_euclid(3600);
        let since = (this_hour - i64::from(hours) + 1) * 3600;
        Ok(self.store().login_activity(since).await?)
    }

    /// Users whose account is locked for everyone now (at most `limit`),
    /// the latest lock first. Locks of unregistered numbers, and those from
    /// one address only (scope `account_ip`), are not listed: the first
    /// stop no one, the second stop one address.
    pub async fn locked_accounts(&self, limit: u32) -> Result<Vec<LockedAccount>, CiamError> {
        let locked = self.store().locked_users(self.now(), limit).await?;
        Ok(locked.into_iter().map(|(user, until)| LockedAccount { user, until }).collect())
    }

    /// The signing keys, current first.
    pub async fn signing_keys(&self) -> Result<Vec<KeySummary>, CiamError> {
        let mut keys: Vec<KeySummary> = self
            .store()
            .list_signing_keys()
            .await?
            .into_iter()
            .map(|k| KeySummary {
                kid: k.kid,
                alg: k.alg,
                created_at: k.created_at,
                retired_at: k.retired_at,
                publish_until: k.publish_until,
            })
            .collect();
        keys.sort_by_key(|k| (k.retired_at.is_some(), std::cmp::Reverse(k.created_at)));
        Ok(keys)
    }

    /// The apps a user is assigned to, by client id.
    pub async fn user_apps(&self, user: &User) -> Result<Vec<ClientId>, CiamError> {
        let mut apps = self.store().user_apps(&user.id).await?;
        // In the same order on every backend (databases collate text
        // differently).
        apps.sort();
        Ok(apps)
    }

    /// Signs in to the console with the admin token: a new session token
    /// and when it ends, or `None` when the token is wrong.
    ///
    /// The session keeps the admin token's stored digest it was checked
    /// against, and lives only while that is still the admin token's: a
    /// new token ends every session, even one whose sign-in raced the
    /// change.
    pub async fn open_console_session(&self, admin_token: &str) -> Result<Option<(OpaqueToken, UnixTime)>, CiamError> {
        let Some(admin_digest) = self.admin_token_digest().await?.filter(|d| admin_token_matches(admin_token, d))
        else {
            return Ok(None);
        };
        let token = OpaqueToken::generate(CONSOLE_TOKEN_LEN)?;
        let expires_at = self.now() + CONSOLE_SESSION_SECONDS;
        self.store().insert_console_session(&token.digest(), &admin_digest, expires_at).await?;
        Ok(Some((token, expires_at)))
    }

    /// Whether `token` is a live console session, opened with the admin
    /// token of now.
    pub async fn console_session_alive(&self, token: &str) -> Result<bool, CiamError> {
        let digest = OpaqueToken::from_client(token).digest();
        let Some((_, opened_with)) = self.store().console_session(&digest, self.now()).await? else {
            return Ok(false);
        };
        Ok(self.admin_token_digest().await?.is_some_and(|current| constant_time_eq(&current, &opened_with)))
    }

    /// Ends a console session (signing out).
    pub async fn close_console_session(&self, token: &str) -> Result<(), CiamError> {
        Ok(self.store().delete_console_session(&OpaqueToken::from_client(token).digest()).await?)
    }
}

impl Ciam {
    /// Until when a user's account is locked for everyone, if it is now.
    pub async fn account_locked_until(&self, user: &User) -> Result<Option<UnixTime>, CiamError> {
        let state = self.store().failure_state(&LockKey::account(&user.mobile)).await?;
        Ok(state.and_then(|s| s.locked_until).filter(|until| *until > self.now()))
    }

    /// For each of `users` (a page of a list), until when it is locked for
    /// everyone, if it is now: one index probe each.
    pub async fn accounts_locked_until(&self, users: &[User]) -> Result<Vec<Option<UnixTime>>, CiamError> {
        let mut locks = Vec::with_capacity(users.len());
        for user in users {
            locks.push(self.account_locked_until(user).await?);
        }
        Ok(locks)
    }

    /// The members of an app (its assigned users) by mobile, at most
    /// `limit`.
    pub async fn app_members(&self, client_id: &str, limit: u32) -> Result<Vec<User>, CiamError> {
        let app = self.app(client_id).await?;
        Ok(self.store().app_members(&app.client_id, limit).await?)
    }
}
