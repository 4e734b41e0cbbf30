//! SSO tickets (docs/oidc.md §11): a native app holding a session_token
//! asks for a single-use ticket for one web app; the browser it opens
//! redeems the ticket on a page that asks first, so a link fetched by a
//! mail scanner spends nothing; then the web app starts its own login,
//! answered from the browser session the ticket made.

use crate::call::{Answered, Call};
use crate::error::{CiamError, ErrorCode};
use crate::model::{App, Status, User};
use crate::service::Ciam;
use crate::store::GrantKind;
use crate::token::OpaqueToken;

use super::{NewGrant, TICKET_SECONDS, body, with_query};

/// A ticket handed to a native app.
#[derive(Debug)]
pub struct Ticket {
    /// The ticket (shown once; stored as a digest).
    pub sso_ticket: OpaqueToken,
    /// Seconds it stays valid.
    pub expire: i64,
}

impl Answered for Ticket {
    fn status(&self) -> Status {
        Status::Success
    }
}

/// What the ticket page shows before it is used.
#[derive(Debug, Clone)]
pub struct TicketView {
    /// The user, masked (`152****0000`).
    pub masked_mobile: String,
    /// The app the ticket signs into.
    pub app_name: String,
    /// Where the browser goes once the ticket is used.
    pub initiate_login_uri: String,
    /// Where the app's own login then sends it.
    pub redirect_uris: Vec<String>,
}

/// How a ticket's redemption is answered.
#[derive(Debug)]
pub enum Redeemed {
    /// Signed in: to the app's `initiate_login_uri`, with a new browser
    /// session when the browser had none.
    SignedIn {
        /// Where the browser goes.
        redirect: String,
        /// A new browser session's token and how long it lives.
        browser: Option<(OpaqueToken, i64)>,
    },
    /// Another user is signed in in this browser: nothing changed.
    OtherUser,
    /// Invalid, used or expired: nothing changed.
    Expired,
}

/// What a ticket keeps.
#[derive(serde::Serialize, serde::Deserialize)]
struct TicketBody {}

impl Ciam {
    /// `POST /api/v2/sdk/sso/session-token/sso-ticket`: a ticket for
    /// `target`, for the user of a live session of the call's app.
    pub async fn sso_ticket(&self, call: &mut Call, session_token: &str, target: &str) -> Result<Ticket, CiamError> {
        let now = self.now();
        let (_, user) = self.call_session(call, &OpaqueToken::from_client(session_token), now).await?;
        let app = self.enabled_app(target.trim()).await?;
        let Some(app) = app.filter(|a| a.oidc.initiate_login_uri.is_some()) else {
            return Err(CiamError::refused(ErrorCode::SsoTargetInvalid));
        };
        let (sso_ticket, grant) = NewGrant {
            kind: GrantKind::Ticket,
            client_id: Some(app.client_id),
            user_id: Some(user.id),
            family: None,
            expires_at: now + TICKET_SECONDS,
        }
        .make(body(&TicketBody {})?)?;
        self.store().insert_grants(&[grant]).await?;
        Ok(Ticket { sso_ticket, expire: TICKET_SECONDS })
    }

    /// The user and app of a live, unused ticket, without using it.
    async fn ticket(&self, ticket: &str) -> Result<Option<(User, App)>, CiamError> {
        let grant = self.live_grant(ticket, GrantKind::Ticket).await?;
        let Some(grant) = grant.filter(|g| g.uses == 0) else {
            return Ok(None);
        };
        let user = self.enabled_owner(&grant).await?;
        let app = match &grant.client_id {
            Some(id) => self.enabled_app(id.as_str()).await?,
            None => None,
        };
        Ok(user.zip(app.filter(|a| a.oidc.initiate_login_uri.is_some())))
    }

    /// `GET /api/v1/sso/ticket`: what the page asks about, or `None` for a
    /// ticket that is invalid, used or expired. Spends nothing.
    pub async fn ticket_view(&self, ticket: &str) -> Result<Option<TicketView>, CiamError> {
        Ok(self.ticket(ticket).await?.map(|(user, app)| TicketView {
            masked_mobile: user.mobile.masked(),
            app_name: app.name,
            initiate_login_uri: app.oidc.initiate_login_uri.unwrap_or_default(),
            redirect_uris: app.oidc.redirect_uris,
        }))
    }

    /// `POST /api/v1/sso/ticket`: uses the ticket up and signs the browser
    /// in as its user, unless another user is signed in there.
    pub async fn redeem_ticket(&self, ticket: &str, browser: Option<&str>) -> Result<Redeemed, CiamError> {
        let Some((user, app)) = self.ticket(ticket).await? else {
            return Ok(Redeemed::Expired);
        };
        let signed_in = match browser {
            Some(cookie) => self.browser_session(cookie).await?,
            None => None,
        };
        if signed_in.as_ref().is_some_and(|(other, _)| other.id != user.id) {
            return Ok(Redeemed::OtherUser);
        }
        let used = self.store().use_grant(&Self::digest_of(ticket), GrantKind::Ticket).await?;
        let now = self.now();
        if !used.is_some_and(|g| g.uses == 1 && g.expires_at > now) {
            return Ok(Redeemed::Expired);
        }
        let browser = match signed_in {
            Some(_) => None,
            None => Some(self.new_browser_session(&user, now).await?),
        };
        let target = app.oidc.initiate_login_uri.unwrap_or_default();
        let redirect = with_query(&target, &[("iss", self.config().issuer.as_str())]);
        Ok(Redeemed::SignedIn { redirect, browser })
    }

    /// A browser session for `user` from now, stored.
    async fn new_browser_session(&self, user: &User, now: crate::UnixTime) -> Result<(OpaqueToken, i64), CiamError> {
        let (token, grant) = self.browser_grant(user, now)?;
        self.store().insert_grants(&[grant]).await?;
        Ok((token, self.config().sso_session_seconds))
    }
}
