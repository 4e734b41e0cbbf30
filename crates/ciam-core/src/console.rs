//! What the admin console shows beyond the admin API's calls, and its
//! sign-in sessions. Every change the console makes goes through the same
//! domain calls as the admin API; these are reads and the sessions.

use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::ClientId;
use crate::service::Ciam;
use crate::store::{ActivityCount, Purge};
use crate::token::OpaqueToken;

/// How long a console session lasts.
pub const CONSOLE_SESSION_SECONDS: i64 = 8 * 3600;

/// The console session token's length.
const CONSOLE_TOKEN_LEN: usize = 43;

/// A signing key as the console shows it (never its private part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySummary {
    /// The JWK `kid`.
    pub kid: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// When a newer key took over signing, if one has.
    pub retired_at: Option<UnixTime>,
    /// Until when it stays in the JWKS, once retired.
    pub publish_until: Option<UnixTime>,
}

/// An account locked now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedAccount {
    /// Its mobile (E.164).
    pub mobile: String,
    /// Locked from one address only (scope `account_ip`).
    pub from_one_address: bool,
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

    /// Accounts locked now (at most `limit`), latest first. Numbers that
    /// are not phone numbers are not shown (their keys are not kept in the
    /// clear).
    pub async fn locked_accounts(&self, limit: u32) -> Result<Vec<LockedAccount>, CiamError> {
        let keys = self.store().locked_keys(self.now(), limit).await?;
        Ok(keys
            .into_iter()
            .filter_map(|(key, until)| {
                let key = key.as_str();
                let (mobile, from_one_address) = match key.split_once('|') {
                    Some((account, _)) => (account, true),
                    None => (key, false),
                };
                mobile.starts_with('+').then(|| LockedAccount { mobile: mobile.to_owned(), from_one_address, until })
            })
            .collect())
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
                created_at: k.created_at,
                retired_at: k.retired_at,
                publish_until: k.publish_until,
            })
            .collect();
        keys.sort_by_key(|k| (k.retired_at.is_some(), std::cmp::Reverse(k.created_at)));
        Ok(keys)
    }

    /// The apps a user is assigned to.
    pub async fn user_apps(&self, user_id: &str) -> Result<Vec<ClientId>, CiamError> {
        let user = self.user(user_id).await?;
        Ok(self.store().user_apps(&user.id).await?)
    }

    /// Signs in to the console with the admin token: a new session token
    /// and when it ends, or `None` when the token is wrong.
    pub async fn open_console_session(&self, admin_token: &str) -> Result<Option<(OpaqueToken, UnixTime)>, CiamError> {
        if !self.is_admin_token(admin_token).await? {
            return Ok(None);
        }
        let token = OpaqueToken::generate(CONSOLE_TOKEN_LEN)?;
        let expires_at = self.now() + CONSOLE_SESSION_SECONDS;
        self.store().insert_console_session(&token.digest(), expires_at).await?;
        Ok(Some((token, expires_at)))
    }

    /// Whether `token` is a live console session.
    pub async fn console_session_alive(&self, token: &str) -> Result<bool, CiamError> {
        let digest = OpaqueToken::from_client(token).digest();
        Ok(self.store().console_session(&digest, self.now()).await?.is_some())
    }

    /// Ends every console session: the admin token they were opened with
    /// is no longer the token.
    pub(crate) async fn end_console_sessions(&self) -> Result<(), CiamError> {
        const BATCH: u32 = 1000;
        while self.store().purge(Purge::ConsoleSessions(UnixTime::MAX), BATCH).await? == u64::from(BATCH) {}
        Ok(())
    }

    /// Ends a console session (signing out).
    pub async fn close_console_session(&self, token: &str) -> Result<(), CiamError> {
        Ok(self.store().delete_console_session(&OpaqueToken::from_client(token).digest()).await?)
    }
}

impl Ciam {
    /// Until when a user's account is locked for everyone, if it is now.
    pub async fn account_locked_until(&self, user_id: &str) -> Result<Option<UnixTime>, CiamError> {
        let user = self.user(user_id).await?;
        self.locked_until(&user).await
    }

    /// For each of `users` (a page of a list), until when it is locked for
    /// everyone, if it is now.
    pub async fn accounts_locked_until(
        &self,
        users: &[crate::model::User],
    ) -> Result<Vec<Option<UnixTime>>, CiamError> {
        let mut locks = Vec::with_capacity(users.len());
        for user in users {
            locks.push(self.locked_until(user).await?);
        }
        Ok(locks)
    }

    async fn locked_until(&self, user: &crate::model::User) -> Result<Option<UnixTime>, CiamError> {
        let state = self.store().failure_state(&crate::model::LockKey::account(&user.mobile)).await?;
        Ok(state.and_then(|s| s.locked_until).filter(|until| *until > self.now()))
    }

    /// The members of an app (its assigned users) by mobile, at most
    /// `limit`.
    pub async fn app_members(&self, client_id: &str, limit: u32) -> Result<Vec<crate::model::User>, CiamError> {
        let app = self.app(client_id).await?;
        Ok(self.store().app_members(&app.client_id, limit).await?)
    }
}
