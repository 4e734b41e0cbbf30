//! What the OpenID Connect code flow keeps between its steps
//! (docs/oidc.md): stored authorization requests, codes, access and refresh
//! tokens, browser sessions and SSO tickets, each a [`Grant`] under the
//! digest of the secret that names it, so that any instance answers any
//! step.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::model::{ClientId, Reservation, TokenDigest, UserId};

use super::StoreResult;

/// What a grant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantKind {
    /// A validated authorization request, waiting for the login page.
    Request,
    /// An authorization code.
    Code,
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
    /// A browser session (single sign-on).
    Browser,
    /// An SSO ticket.
    Ticket,
    /// A password change the login page offers: names the state_token of
    /// the change (by its digest) and binds it to its stored request.
    Change,
}

impl GrantKind {
    /// Every kind.
    pub const ALL: [GrantKind; 7] = [
        GrantKind::Request,
        GrantKind::Code,
        GrantKind::Access,
        GrantKind::Refresh,
        GrantKind::Browser,
        GrantKind::Ticket,
        GrantKind::Change,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Request => "request",
            GrantKind::Code => "code",
            GrantKind::Access => "access",
            GrantKind::Refresh => "refresh",
            GrantKind::Browser => "browser",
            GrantKind::Ticket => "ticket",
            GrantKind::Change => "change",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The digest of the secret that names it.
    pub digest: TokenDigest,
    /// What it is.
    pub kind: GrantKind,
    /// The app it was made for (none for a browser session).
    pub client_id: Option<ClientId>,
    /// Whose it is, once known.
    pub user_id: Option<UserId>,
    /// The grants revoked together with it (the code's digest, for the
    /// tokens issued from a code and their refreshed successors).
    pub family: Option<String>,
    /// What the kind keeps, as JSON.
    pub body: String,
    /// Redemptions so far, this one included when returned by
    /// [`GrantStore::use_grant`].
    pub uses: i64,
    /// When it dies.
    pub expires_at: UnixTime,
}

/// The store of grants; part of every [`super::Store`].
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores grants in one commit.
    async fn insert_grants(&self, grants: &[Grant]) -> StoreResult<()>;
    /// A grant of `kind` alive at `now`.
    async fn get_grant(&self, digest: &TokenDigest, kind: GrantKind, now: UnixTime) -> StoreResult<Option<Grant>>;
    /// Counts one redemption of a grant of `kind`, alive or not, atomically
    /// on every instance, and returns it with its count (1 for the first).
    async fn use_grant(&self, digest: &TokenDigest, kind: GrantKind) -> StoreResult<Option<Grant>>;
    /// The commit of a login on the hosted login page: stores `grants` (the
    /// browser session, the code), deletes those `spent` (the browser's
    /// previous session), and gives back the login's
    /// attempt reserved in its address's window and its check's places, all
    /// in one transaction.
    async fn commit_sign_in(
        &self,
        grants: &[Grant],
        spent: &[(TokenDigest, GrantKind)],
        reserved: Option<&Reservation>,
        place: Option<&str>,
    ) -> StoreResult<()>;
    /// Deletes a grant of `kind`; false when there was none.
    async fn delete_grant(&self, digest: &TokenDigest, kind: GrantKind) -> StoreResult<bool>;
    /// Deletes every grant of `family`; returns how many.
    async fn revoke_family(&self, family: &str) -> StoreResult<u64>;
    /// Deletes every grant of a user (a password change, a disabled user);
    /// returns how many.
    async fn revoke_user_grants(&self, user_id: &UserId) -> StoreResult<u64>;
}
