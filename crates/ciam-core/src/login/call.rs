//! One SDK call as the domain sees it (docs/api.md §1): who is calling, the
//! app it is for, and the audit event it leaves.
//!
//! The HTTP layer turns a request into a [`Caller`] and opens the call with
//! [`Ciam::open_call`], which runs the checks every SDK call starts with.
//! An SDK operation (login, password update, …) then runs on the [`Call`],
//! noting what it learns for the event, and [`Ciam::close_call`] stores the
//! event with the call's outcome, unless the operation's last write already
//! stored it in the same commit.

use std::net::IpAddr;

use crate::error::{CiamError, ErrorCode, Lang};
use crate::hashpool::Owner;
use crate::inflight::Place;
use crate::model::{Action, AddressKey, App, AuditEvent, Device, Outcome, Reservation, Status, UserId, audit_text};
use crate::service::Ciam;

/// The longest client id kept in the audit log.
const CLIENT_ID_MAX: usize = 256;

/// What a request says about who is calling; nothing here is trusted yet.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `X-client-id`, trimmed; `None` when missing or blank.
    pub client_id: Option<String>,
    /// The device headers, each `None` when missing or blank.
    pub device: Device,
    /// The client's address: the TCP peer, or behind a trusted proxy the
    /// address it forwarded for (docs/api.md §7).
    pub ip: Option<IpAddr>,
    /// The language of the answer (`X-L`).
    pub lang: Lang,
    /// The request's id (`X-Request-Id`, docs/api.md §9).
    pub request_id: Option<String>,
}

/// Where a call stands in its address's line of calls in progress
/// ([`crate::inflight`]) when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Line {
    /// Not in it yet: the call takes its place as it opens.
    #[default]
    NotYet,
    /// Its place is held for it (see [`Ciam::line_up`]), or it needs none.
    Held,
    /// It waited its turn for too long: opening it refuses it, audited.
    TimedOut,
}

/// An SDK call of a registered, enabled app, under way.
#[derive(Debug)]
pub struct Call {
    app: App,
    draft: Draft,
    /// The outcome the event was already stored with, if it was.
    stored: Option<Outcome>,
    /// A password attempt counted in the address's window, not yet known
    /// to be a failure.
    reserved: Option<Reservation>,
    /// The id of the places the call's password check holds on its failure
    /// counters, until it is counted or given back.
    places: Option<String>,
    /// The call's place among its address's calls in progress.
    _place: Option<Place>,
}

/// The audit event of a call, all but its outcome.
#[derive(Debug)]
struct Draft {
    at: crate::UnixTime,
    action: Action,
    caller: Caller,
    mobile: Option<String>,
    user_id: Option<UserId>,
}

impl Draft {
    fn event(&self, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            at: self.at,
            action: self.action,
            outcome,
            mobile: self.mobile.clone(),
            user_id: self.user_id.clone(),
            client_id: self.caller.client_id.as_deref().map(|id| audit_text(id, CLIENT_ID_MAX)),
            device: self.caller.device.clone(),
            ip: self.caller.ip.map(|ip| ip.to_canonical().to_string()),
            request_id: self.caller.request_id.clone(),
        }
    }
}

/// What a call that answered HTTP 200 reports as its `status`.
pub trait Answered {
    /// The status of the answer.
    fn status(&self) -> Status;
}

impl Answered for Status {
    fn status(&self) -> Status {
        *self
    }
}

impl Call {
    /// The app the call is for.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The language the answer is in.
    pub fn lang(&self) -> Lang {
        self.draft.caller.lang
    }

    /// The client's address.
    pub fn address(&self) -> Option<IpAddr> {
        self.draft.caller.ip
    }

    /// Whose work the call's hashes are.
    pub(crate) fn owner(&self) -> Owner {
        self.address().map(AddressKey::of)
    }

    /// Holds an attempt counted in the address's window until the call
    /// knows whether its password was right.
    pub(crate) fn reserve(&mut self, reservation: Reservation) {
        self.reserved = Some(reservation);
    }

    /// The held attempt, if any, to count as a failure or give back.
    pub(crate) fn take_reservation(&mut self) -> Option<Reservation> {
        self.reserved.take()
    }

    /// Holds the places of the call's password check (their id).
    pub(crate) fn hold_places(&mut self, id: String) {
        self.places = Some(id);
    }

    /// The id of the places the call's check holds, to count or give back.
    pub(crate) fn take_places(&mut self) -> Option<String> {
        self.places.take()
    }

    /// Notes the mobile the call is about, as the audit log keeps it.
    pub(crate) fn note_mobile(&mut self, mobile: String) {
        self.draft.mobile = Some(mobile);
    }

    /// Notes the user the call is about.
    pub(crate) fn note_user(&mut self, user_id: &UserId) {
        self.draft.user_id = Some(user_id.clone());
    }

    /// The call's audit event, ending in `outcome`.
    pub(crate) fn event(&self, outcome: Outcome) -> AuditEvent {
        self.draft.event(outcome)
    }

    /// Records that the event was stored with `outcome` by the call's own
    /// last write.
    pub(crate) fn stored(&mut self, outcome: Outcome) {
        self.stored = Some(outcome);
    }
}

impl Ciam {
    /// Checks 1–3 of every SDK call: the device headers, then `X-client-id`,
    /// then a registered, enabled app; then the call takes its place among
    /// its address's calls in progress ([`crate::inflight`]). Only the last
    /// refusal is audited: the others are calls of no registered app.
    pub async fn open_call(&self, caller: Caller, action: Action) -> Result<Call, CiamError> {
        self.open_call_in_line(caller, action, Line::NotYet).await
    }

    /// [`Ciam::open_call`] for a call that already stands at `line` in its
    /// address's line.
    pub async fn open_call_in_line(&self, caller: Caller, action: Action, line: Line) -> Result<Call, CiamError> {
        let draft = Draft { at: self.now(), action, caller, mobile: None, user_id: None };
        // Calls of no registered app are not audited: anyone could grow the
        // log with them (docs/api.md §8).
        let app = self.registered_app(&draft.caller).await?;
        self.enter(draft, app, line).await
    }

    /// Waits for a place for a call from `ip` among its address's calls in
    /// progress, before anything else is done for it: the HTTP layer lines
    /// SDK calls up this way, so a call waiting its turn holds only its
    /// request, then opens it with [`Line::Held`] (or [`Line::TimedOut`]
    /// when this refuses it), keeping the place until it has answered.
    /// `None` for an allowlisted or unknown address.
    pub async fn line_up(&self, ip: Option<IpAddr>) -> Result<Option<Place>, CiamError> {
        let Some(ip) = ip else {
            return Ok(None);
        };
        if self.throttle_policy().await?.allows(ip) {
            return Ok(None);
        }
        self.in_flight().enter(AddressKey::of(ip)).await.map(Some)
    }

    /// A call of the hosted login page for `app` (docs/oidc.md): no device
    /// headers to check, the app already known from the stored request;
    /// then, as an SDK call, its place among its address's calls in
    /// progress.
    pub(crate) async fn open_page_call(&self, caller: Caller, app: App, action: Action) -> Result<Call, CiamError> {
        self.enter(Draft { at: self.now(), action, caller, mobile: None, user_id: None }, app, Line::NotYet).await
    }

    /// A call of `app` takes its place among its address's calls in
    /// progress, unless it stands there already; a refusal is audited.
    async fn enter(&self, draft: Draft, app: App, line: Line) -> Result<Call, CiamError> {
        let place = match line {
            Line::NotYet => self.line_up(draft.caller.ip).await,
            Line::Held => Ok(None),
            Line::TimedOut => Err(crate::inflight::waited_too_long()),
        };
        match place {
            Ok(place) => Ok(Call { app, draft, stored: None, reserved: None, places: None, _place: place }),
            Err(refusal) => {
                self.audit(&draft.event(Outcome::Refused(refusal.code()))).await?;
                Err(refusal)
            }
        }
    }

    async fn registered_app(&self, caller: &Caller) -> Result<App, CiamError> {
        let device = &caller.device;
        if device.os_version.is_none() || device.fingerprint.is_none() || device.agent.is_none() {
            return Err(CiamError::refused(ErrorCode::DeviceInfoIncomplete));
        }
        let Some(client_id) = &caller.client_id else {
            return Err(CiamError::refused(ErrorCode::ClientIdEmpty));
        };
        self.enabled_app(client_id).await?.ok_or_else(|| CiamError::refused(ErrorCode::AppNotRegistered))
    }

    /// Ends a call: stores its audit event with the outcome of `result`, and
    /// hands `result` back. An event that cannot be stored turns the answer
    /// into `IDAAS.SDK.COM.0002`, so no call answers without its event.
    ///
    /// An attempt still held in the address's window (a right password that
    /// did not end in a session, or a hash that never ran) is given back, and
    /// so are places on failure counters held by a check never counted.
    pub async fn close_call<T: Answered>(&self, mut call: Call, result: Result<T, CiamError>) -> Result<T, CiamError> {
        if let Some(places) = call.take_places()
            && let Err(e) = self.store().release_place(&places).await
        {
            // Their places lapse by themselves (`GUESS_HOLD`).
            tracing::warn!(error = %e, "a password check's place was not given back");
        }
        if let Some(reserved) = call.take_reservation()
            && let Err(e) = self.store().release_attempt(&reserved).await
        {
            tracing::warn!(error = %e, "a reserved attempt was not given back");
        }
        let outcome = match &result {
            Ok(answer) => Outcome::Status(answer.status()),
            Err(error) => Outcome::Refused(error.code()),
        };
        if call.stored != Some(outcome) {
            self.audit(&call.event(outcome)).await?;
        }
        result
    }

    /// Stores a call's event; a refusal that cost no hash is counted in its
    /// address's and outcome's event of the minute instead (so a flood of
    /// them grows the log by one row a minute).
    async fn audit(&self, event: &AuditEvent) -> Result<(), CiamError> {
        match event.outcome {
            Outcome::Refused(code) if code.costs_no_hash() => self.store().count_refusal(event).await?,
            _ => self.store().insert_audit(event).await?,
        }
        Ok(())
    }
}
