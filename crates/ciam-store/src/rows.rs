//! The rows the statements read, as sqlx decodes them, and how each becomes
//! the domain's type. Column names are the struct fields.

use ciam_core::mobile::Mobile;
use ciam_core::model::{
    Action, App, AppAccess, AuditEntry, AuditEvent, ClientId, ClientType, Device, FailureState, Flow, HistoryEntry,
    Lookup, OidcClient, Outcome, Session, SigningAlg, SigningKeyRecord, Signup, StateGrant, StoredSession,
    ThrottleState, TokenDigest, User, UserId,
};
use ciam_core::store::ActivityCount;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

fn decode_error(what: String) -> sqlx::Error {
    sqlx::Error::Decode(what.into())
}

/// A row of a `LEFT JOIN`: `T`, or `None` when the joined table had no row
/// (its `id` column is NULL).
#[derive(Debug)]
pub(crate) struct Joined<T>(pub Option<T>);

impl<'r, R, T> FromRow<'r, R> for Joined<T>
where
    R: Row,
    T: FromRow<'r, R>,
    &'r str: ColumnIndex<R>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let id: Option<String> = row.try_get("id")?;
        Ok(Joined(id.map(|_| T::from_row(row)).transpose()?))
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct AppRow {
    client_id: String,
    name: String,
    enabled: bool,
    password_expiry_check: bool,
    access: String,
    session_ttl: i64,
    id_token_ttl: i64,
    created_at: i64,
    client_type: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    initiate_login_uri: Option<String>,
    secret_digest: Option<String>,
    self_registration: bool,
    sms_auto_register: bool,
    id_token_alg: String,
}

impl From<AppRow> for App {
    fn from(r: AppRow) -> Self {
        App {
            client_id: ClientId::new(r.client_id),
            name: r.name,
            enabled: r.enabled,
            password_expiry_check: r.password_expiry_check,
            // An access this version does not know admits fewer, not more.
            access: AppAccess::parse(&r.access).unwrap_or(AppAccess::Assigned),
            session_ttl: r.session_ttl,
            id_token_ttl: r.id_token_ttl,
            // An algorithm this version does not know: the one every
            // relying party verifies.
            id_token_alg: SigningAlg::parse(&r.id_token_alg).unwrap_or_default(),
            created_at: r.created_at,
            oidc: OidcClient {
                // A type this version does not know must show a secret.
                client_type: ClientType::parse(&r.client_type).unwrap_or(ClientType::Confidential),
                redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
                post_logout_redirect_uris: serde_json::from_str(&r.post_logout_redirect_uris).unwrap_or_default(),
                initiate_login_uri: r.initiate_login_uri,
                secret_digest: r.secret_digest,
            },
            signup: Signup { self_registration: r.self_registration, sms_auto_register: r.sms_auto_register },
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct UserRow {
    id: String,
    mobile: String,
    user_name: Option<String>,
    name: Option<String>,
    email: Option<String>,
    disabled: bool,
    password_hash: String,
    password_changed_at: i64,
    created_at: i64,
    updated_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId::new(r.id),
            mobile: Mobile::from_stored(r.mobile),
            user_name: r.user_name,
            name: r.name,
            email: r.email,
            disabled: r.disabled,
            password_hash: r.password_hash,
            password_changed_at: r.password_changed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct FailureRow {
    failures: i64,
    locked_until: Option<i64>,
}

impl FailureRow {
    pub fn new(failures: i64, locked_until: Option<i64>) -> Self {
        Self { failures, locked_until }
    }
}

impl TryFrom<FailureRow> for FailureState {
    type Error = sqlx::Error;

    fn try_from(r: FailureRow) -> Result<Self, sqlx::Error> {
        let failures = u32::try_from(r.failures).map_err(|e| decode_error(format!("failure count: {e}")))?;
        Ok(FailureState { failures, locked_until: r.locked_until })
    }
}

/// A password attempt's first read: the state of up to two failure
/// counters and of the address's window (NULLs where none is kept), and the
/// user (NULLs when there is none).
#[derive(Debug, FromRow)]
pub(crate) struct LookupRow {
    f1_failures: Option<i64>,
    f1_locked_until: Option<i64>,
    f2_failures: Option<i64>,
    f2_locked_until: Option<i64>,
    t_window_start: Option<i64>,
    t_failures: Option<i64>,
    #[sqlx(flatten)]
    user: Joined<UserRow>,
}

fn failure_state(failures: Option<i64>, locked_until: Option<i64>) -> Result<Option<FailureState>, sqlx::Error> {
    failures.map(|failures| FailureRow::new(failures, locked_until).try_into()).transpose()
}

impl LookupRow {
    /// The lookup, with the states of the first `keys` counters.
    pub fn into_lookup(self, keys: usize) -> Result<Lookup, sqlx::Error> {
        let counts = [
            failure_state(self.f1_failures, self.f1_locked_until)?,
            failure_state(self.f2_failures, self.f2_locked_until)?,
        ];
        let throttle = match (self.t_window_start, self.t_failures) {
            (Some(window_start), Some(failures)) => Some(ThrottleRow { window_start, failures }.into()),
            _ => None,
        };
        Ok(Lookup { counts: counts.into_iter().take(keys).collect(), throttle, user: self.user.0.map(User::from) })
    }
}

/// An address's window of attempts.
#[derive(Debug, FromRow)]
pub(crate) struct ThrottleRow {
    window_start: i64,
    failures: i64,
}

impl ThrottleRow {
    pub fn new(window_start: i64, failures: i64) -> Self {
        Self { window_start, failures }
    }
}

impl From<ThrottleRow> for ThrottleState {
    fn from(r: ThrottleRow) -> Self {
        ThrottleState { window_start: r.window_start, failures: u32::try_from(r.failures).unwrap_or(u32::MAX) }
    }
}

/// What a grouped write returns: the new failure count (a failure), and the
/// id of the audit event stored with it. On SQLite each comes in a row of
/// its own, with NULL in the other columns.
#[derive(Debug, FromRow)]
pub(crate) struct GroupedRow {
    pub failures: Option<i64>,
    pub locked_until: Option<i64>,
    pub id: Option<i64>,
}

/// A row of a grouped check (see `grouped::sqlite_check`): which `part`
/// of the check it answers, and that part's columns.
#[derive(Debug, FromRow)]
pub(crate) struct CheckRow {
    pub part: i64,
    pub failures: Option<i64>,
    pub locked_until: Option<i64>,
    pub window_start: Option<i64>,
}

#[derive(Debug, FromRow)]
pub(crate) struct SessionUserRow {
    client_id: String,
    expires_at: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

impl From<SessionUserRow> for (Session, User) {
    fn from(r: SessionUserRow) -> Self {
        let user = User::from(r.user);
        let session =
            Session { user_id: user.id.clone(), client_id: ClientId::new(r.client_id), expires_at: r.expires_at };
        (session, user)
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct GrantRow {
    user_id: String,
    client_id: String,
    flow: String,
    expires_at: i64,
}

impl TryFrom<GrantRow> for StateGrant {
    type Error = sqlx::Error;

    fn try_from(r: GrantRow) -> Result<Self, sqlx::Error> {
        Ok(StateGrant {
            user_id: UserId::new(r.user_id),
            client_id: ClientId::new(r.client_id),
            flow: Flow::parse(&r.flow).ok_or_else(|| decode_error(format!("unknown flow {}", r.flow)))?,
            expires_at: r.expires_at,
        })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    private_pkcs8: Vec<u8>,
    created_at: i64,
    retired_at: Option<i64>,
    publish_until: Option<i64>,
    alg: String,
}

impl From<KeyRow> for SigningKeyRecord {
    fn from(r: KeyRow) -> Self {
        SigningKeyRecord {
            alg: SigningAlg::parse(&r.alg).unwrap_or_default(),
            kid: r.kid,
            private_pkcs8: r.private_pkcs8,
            created_at: r.created_at,
            retired_at: r.retired_at,
            publish_until: r.publish_until,
        }
    }
}

/// The columns of an audit event, in the order they are bound.
pub(crate) const AUDIT_FIELDS: [&str; 12] = [
    "at",
    "action",
    "outcome",
    "mobile",
    "user_id",
    "client_id",
    "os_version",
    "device_fingerprint",
    "device_ip",
    "agent",
    "ip",
    "request_id",
];

/// An event's values, in [`AUDIT_FIELDS`] order.
pub(crate) fn audit_args(e: &AuditEvent) -> [crate::exec::Arg; AUDIT_FIELDS.len()] {
    use crate::exec::Arg;
    [
        Arg::Int(e.at),
        Arg::Text(e.action.as_str().to_owned()),
        Arg::Text(e.outcome.as_str().to_owned()),
        Arg::OptText(e.mobile.clone()),
        Arg::OptText(e.user_id.as_ref().map(|id| id.as_str().to_owned())),
        Arg::OptText(e.client_id.clone()),
        Arg::OptText(e.device.os_version.clone()),
        Arg::OptText(e.device.fingerprint.clone()),
        Arg::OptText(e.device.claimed_ip.clone()),
        Arg::OptText(e.device.agent.clone()),
        Arg::OptText(e.ip.clone()),
        Arg::OptText(e.request_id.clone()),
    ]
}

#[derive(Debug, FromRow)]
pub(crate) struct AuditRow {
    id: i64,
    at: i64,
    action: String,
    outcome: String,
    mobile: Option<String>,
    user_id: Option<String>,
    client_id: Option<String>,
    #[sqlx(flatten)]
    device: DeviceRow,
    ip: Option<String>,
    request_id: Option<String>,
    count: i64,
}

/// The device headers of an audit event, as the log keeps them.
#[derive(Debug, FromRow)]
pub(crate) struct DeviceRow {
    os_version: Option<String>,
    device_fingerprint: Option<String>,
    device_ip: Option<String>,
    agent: Option<String>,
}

impl From<DeviceRow> for Device {
    fn from(r: DeviceRow) -> Self {
        Device { os_version: r.os_version, fingerprint: r.device_fingerprint, claimed_ip: r.device_ip, agent: r.agent }
    }
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = sqlx::Error;

    fn try_from(r: AuditRow) -> Result<Self, sqlx::Error> {
        let event = AuditEvent {
            at: r.at,
            action: Action::parse(&r.action).ok_or_else(|| decode_error(format!("unknown action {}", r.action)))?,
            outcome: Outcome::parse(&r.outcome)
                .ok_or_else(|| decode_error(format!("unknown outcome {}", r.outcome)))?,
            mobile: r.mobile,
            user_id: r.user_id.map(UserId::new),
            client_id: r.client_id,
            device: r.device.into(),
            ip: r.ip,
            request_id: r.request_id,
        };
        Ok(AuditEntry { id: r.id, event, count: r.count })
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct HistoryRow {
    user_id: String,
    password_hash: String,
    replaced_at: i64,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(r: HistoryRow) -> Self {
        HistoryEntry { user_id: UserId::new(r.user_id), password_hash: r.password_hash, replaced_at: r.replaced_at }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct SessionRow {
    token_digest: String,
    user_id: String,
    client_id: String,
    created_at: i64,
    expires_at: i64,
}

impl From<SessionRow> for StoredSession {
    fn from(r: SessionRow) -> Self {
        StoredSession {
            digest: TokenDigest::new(r.token_digest),
            session: Session {
                user_id: UserId::new(r.user_id),
                client_id: ClientId::new(r.client_id),
                expires_at: r.expires_at,
            },
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct MemberRow {
    client_id: String,
    user_id: String,
}

impl From<MemberRow> for (ClientId, UserId) {
    fn from(r: MemberRow) -> Self {
        (ClientId::new(r.client_id), UserId::new(r.user_id))
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct SettingRow {
    pub name: String,
    pub value: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct ActivityRow {
    hour: i64,
    outcome: String,
    count: i64,
}

impl From<ActivityRow> for ActivityCount {
    fn from(r: ActivityRow) -> Self {
        ActivityCount { hour: r.hour, outcome: r.outcome, count: r.count }
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct LockedUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    locked_until: i64,
}

impl From<LockedUserRow> for (User, i64) {
    fn from(r: LockedUserRow) -> Self {
        (r.user.into(), r.locked_until)
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct ConsoleSessionRow {
    pub expires_at: i64,
    pub admin_digest: String,
}

impl From<ConsoleSessionRow> for (i64, String) {
    fn from(r: ConsoleSessionRow) -> Self {
        (r.expires_at, r.admin_digest)
    }
}

#[derive(Debug, FromRow)]
pub(crate) struct IdRow {
    pub id: String,
}

#[derive(Debug, FromRow)]
pub(crate) struct HashRow {
    pub password_hash: String,
}
