//! Domain tests: [`Ciam`] driven directly, on a fresh SQLite store, with no
//! HTTP in between. They pin the rules the HTTP layer relies on: what a call
//! checks first, which audit event each call leaves, and the operator
//! actions.

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

use std::sync::Arc;

use ciam_core::admin::{AppInput, AuditFilter, UserFilter, UserInput};
use ciam_core::call::Line;
use ciam_core::mobile::parse_region;
use ciam_core::model::{Action, AuditEntry, Device, Outcome, Status};
use ciam_core::policy::{LockoutPolicyPatch, PasswordPolicyPatch};
use ciam_core::{Call, Caller, Ciam, CiamConfig, CiamError, ErrorCode, HashingConfig, Lang, LoginOutcome, OffsetClock};
use ciam_testdb::{Backend, TestDatabase};

const PASSWORD: &str = "Passw0rd!";

struct Domain {
    ciam: Ciam,
    clock: Arc<OffsetClock>,
    client_id: String,
    _db: TestDatabase,
}

fn config() -> CiamConfig {
    CiamConfig {
        issuer: "https://ciam.test".into(),
        region: parse_region("CN").expect("CN"),
        state_token_ttl: 600,
        sso_session_seconds: 28_800,
        hashing: HashingConfig { workers: 2, ..HashingConfig::default() },
        calls_per_address: 64,
        audit_retention_days: 90,
        key_encryption_key: None,
        sms: Default::default(),
    }
}

async fn domain() -> Domain {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let store = ciam_store::open(&db.url, &ciam_store::DbOptions::default()).await.expect("store");
    let clock = Arc::new(OffsetClock::default());
    let ciam = Ciam::open(store.shared(), clock.clone(), config()).await.expect("domain");
    let (app, _) = ciam.create_app(AppInput { name: Some("Shop".into()), ..Default::default() }).await.expect("app");
    let user = UserInput {
        mobile: Some("15200000000".into()),
        password: Some(ciam_core::Password::new(PASSWORD.into())),
        ..Default::default()
    };
    ciam.create_user(user).await.expect("user");
    Domain { ciam, clock, client_id: app.client_id.to_string(), _db: db }
}

fn caller(client_id: &str) -> Caller {
    Caller {
        client_id: Some(client_id.into()),
        device: Device {
            os_version: Some("ios17".into()),
            fingerprint: Some("fp".into()),
            claimed_ip: None,
            agent: Some("test".into()),
        },
        ip: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        lang: Lang::En,
        request_id: Some("domain-test".into()),
    }
}

impl Domain {
    async fn login(&self, mobile: &str, password: &str) -> Result<LoginOutcome, CiamError> {
        let mut call = self.ciam.open_call(caller(&self.client_id), Action::Login).await?;
        let result = self.ciam.login(&mut call, mobile, &ciam_core::Password::new(password.into())).await;
        self.ciam.close_call(call, result).await
    }

    async fn events(&self) -> Vec<AuditEntry> {
        self.ciam.audit_events(&AuditFilter::default()).await.expect("events")
    }
}

fn code<T>(result: Result<T, CiamError>) -> ErrorCode {
    match result {
        Ok(_) => panic!("expected a refusal"),
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn a_call_checks_device_then_client_then_app() {
    let d = domain().await;
    let no_device = Caller { device: Device::default(), ..caller(&d.client_id) };
    assert_eq!(code(d.ciam.open_call(no_device, Action::Login).await), ErrorCode::DeviceInfoIncomplete);
    let no_client = Caller { client_id: None, ..caller(&d.client_id) };
    assert_eq!(code(d.ciam.open_call(no_client, Action::Login).await), ErrorCode::ClientIdEmpty);
    assert_eq!(code(d.ciam.open_call(caller("unknown"), Action::Login).await), ErrorCode::AppNotRegistered);
    let call: Call = d.ciam.open_call(caller(&d.client_id), Action::Logout).await.expect("open");
    assert_eq!(call.app().client_id.as_str(), d.client_id);
}

#[tokio::test]
async fn a_call_lined_up_before_it_opens_takes_no_second_place_and_one_that_waited_too_long_is_refused_audited() {
    let d = domain().await;
    let ip = caller(&d.client_id).ip;
    let mut places = Vec::new();
    for _ in 0..config().calls_per_address {
        places.push(d.ciam.line_up(ip).await.expect("a place").expect("held for a counted address"));
    }
    // Every place of the address is held: a call lined up already opens
    // at once; one that was not would wait its turn.
    let held = d.ciam.open_call_in_line(caller(&d.client_id), Action::Logout, Line::Held);
    let held = tokio::time::timeout(std::time::Duration::from_millis(500), held).await;
    assert!(held.expect("no wait").is_ok());
    let not_yet = d.ciam.open_call(caller(&d.client_id), Action::Logout);
    assert!(tokio::time::timeout(std::time::Duration::from_millis(200), not_yet).await.is_err(), "waits its turn");
    let timed_out = d.ciam.open_call_in_line(caller(&d.client_id), Action::Login, Line::TimedOut).await;
    assert_eq!(code(timed_out), ErrorCode::AddressThrottled);
    let events = d.events().await;
    assert_eq!(events.first().map(|e| e.event.outcome), Some(Outcome::Refused(ErrorCode::AddressThrottled)));
    drop(places);
    assert!(d.ciam.open_call(caller(&d.client_id), Action::Logout).await.is_ok(), "a place is free again");
}

#[tokio::test]
async fn every_attempt_leaves_exactly_one_event_with_its_answer() {
    let d = domain().await;
    assert!(matches!(d.login("+86 152 0000 0000", PASSWORD).await, Ok(LoginOutcome::Success(_))));
    assert_eq!(code(d.login("15200000000", "Wrong-pass1").await), ErrorCode::InvalidCredentials);
    assert_eq!(code(d.login("", PASSWORD).await), ErrorCode::MobileEmpty);
    let outcomes: Vec<Outcome> = d.events().await.into_iter().rev().map(|e| e.event.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Status(Status::Success),
            Outcome::Refused(ErrorCode::InvalidCredentials),
            Outcome::Refused(ErrorCode::MobileEmpty),
        ]
    );
    let newest = &d.events().await[1].event;
    assert_eq!(newest.mobile.as_deref(), Some("+8615200000000"), "the mobile is kept in E.164");
    assert!(newest.user_id.is_some());
    assert_eq!(newest.client_id.as_deref(), Some(d.client_id.as_str()));
}

#[tokio::test]
async fn unlock_by_mobile_lifts_a_lock_on_any_number() {
    let d = domain().await;
    d.ciam
        .update_lockout_policy(LockoutPolicyPatch { max_failures: Some(2), ..Default::default() })
        .await
        .expect("policy");
    for mobile in ["15200000000", "13900000000"] {
        let _ = d.login(mobile, "Wrong-pass1").await;
        assert_eq!(code(d.login(mobile, "Wrong-pass1").await), ErrorCode::AccountLocked);
        assert_eq!(code(d.login(mobile, "Wrong-pass1").await), ErrorCode::AccountLocked);
        let registered = mobile == "15200000000";
        if !registered {
            let refused = d.ciam.unlock_mobile(&format!("+86 {mobile}"), false).await;
            assert_eq!(code(refused), ErrorCode::AdminNotFound, "nobody has it: said, not done");
            assert_eq!(code(d.login(mobile, "Wrong-pass1").await), ErrorCode::AccountLocked);
        }
        let (unlocked, user) = d.ciam.unlock_mobile(&format!("+86 {mobile}"), !registered).await.expect("unlock");
        assert_eq!(unlocked.as_str(), format!("+86{mobile}"));
        assert_eq!(user.is_some(), registered);
        assert_eq!(code(d.login(mobile, "Wrong-pass1").await), ErrorCode::InvalidCredentials);
    }
    assert!(matches!(d.login("15200000000", PASSWORD).await, Ok(LoginOutcome::Success(_))));
    assert_eq!(code(d.ciam.unlock_mobile("not a number", true).await), ErrorCode::AdminFieldInvalid);
}

#[tokio::test]
async fn a_lock_runs_out_with_the_clock() {
    let d = domain().await;
    let patch = LockoutPolicyPatch { max_failures: Some(1), lock_seconds: Some(60), ..Default::default() };
    d.ciam.update_lockout_policy(patch).await.expect("policy");
    assert_eq!(code(d.login("15200000000", "Wrong-pass1").await), ErrorCode::AccountLocked);
    assert_eq!(code(d.login("15200000000", PASSWORD).await), ErrorCode::AccountLocked);
    d.clock.advance(60);
    assert!(matches!(d.login("15200000000", PASSWORD).await, Ok(LoginOutcome::Success(_))));
}

#[tokio::test]
async fn policy_patches_keep_what_they_do_not_set_and_name_a_bad_field() {
    let d = domain().await;
    let policy = d
        .ciam
        .update_password_policy(PasswordPolicyPatch { history: Some(3), ..Default::default() })
        .await
        .expect("patch");
    assert_eq!((policy.history, policy.min_length, policy.max_length), (3, 8, 18));
    let inverted = PasswordPolicyPatch { min_length: Some(20), ..Default::default() };
    let refused = d.ciam.update_password_policy(inverted).await.expect_err("refused");
    assert_eq!(refused.code(), ErrorCode::AdminFieldInvalid);
    assert!(refused.message(Lang::En).contains("'max_length'"), "{}", refused.message(Lang::En));
    assert_eq!(d.ciam.password_policy().await.expect("policy").history, 3, "a refused patch changes nothing");
}

#[tokio::test]
async fn users_are_found_in_any_spelling_and_junk_finds_nobody() {
    let d = domain().await;
    for spelling in ["15200000000", "+86 152-0000-0000"] {
        let found = d.ciam.users(&UserFilter { mobile: Some(spelling.into()), ..Default::default() }).await;
        assert_eq!(found.expect("users").len(), 1, "{spelling}");
    }
    let junk = d.ciam.users(&UserFilter { mobile: Some("'; DROP TABLE users".into()), ..Default::default() }).await;
    assert!(junk.expect("users").is_empty());
    assert_eq!(d.ciam.users(&UserFilter { limit: Some(1000), ..Default::default() }).await.expect("users").len(), 1);
    for (limit, offset) in [(Some(0), None), (Some(1001), None), (None, Some(u32::MAX))] {
        let refused = d.ciam.users(&UserFilter { limit, offset, ..Default::default() }).await;
        let code = refused.map(|_| ()).map_err(|e| e.code());
        assert_eq!(code, Err(ErrorCode::AdminFieldInvalid), "{limit:?} {offset:?}");
    }
}

#[tokio::test]
async fn console_sessions_end_when_the_admin_token_changes() {
    let d = domain().await;
    let first = "a-configured-admin-token-0123456789-abcdef";
    d.ciam.ensure_admin_token(Some(first)).await.expect("token");
    assert!(d.ciam.open_console_session("not the token").await.expect("sign in").is_none());
    let (session, _) = d.ciam.open_console_session(first).await.expect("sign in").expect("a session");
    assert!(d.ciam.console_session_alive(session.expose()).await.expect("alive"));

    // The same token configured again (a restart) keeps the session.
    d.ciam.ensure_admin_token(Some(first)).await.expect("token");
    assert!(d.ciam.console_session_alive(session.expose()).await.expect("alive"));

    // A new token ends it: configured, or reset.
    d.ciam.ensure_admin_token(Some("another-configured-token-0123456789-abcdef")).await.expect("token");
    assert!(!d.ciam.console_session_alive(session.expose()).await.expect("alive"));
    let reset = d.ciam.reset_admin_token().await.expect("reset");
    let (session, _) = d.ciam.open_console_session(reset.expose()).await.expect("sign in").expect("a session");
    d.ciam.reset_admin_token().await.expect("reset");
    assert!(!d.ciam.console_session_alive(session.expose()).await.expect("alive"));

    // A session runs out after eight hours.
    let token = d.ciam.reset_admin_token().await.expect("reset");
    let (session, _) = d.ciam.open_console_session(token.expose()).await.expect("sign in").expect("a session");
    d.clock.advance(ciam_core::console::CONSOLE_SESSION_SECONDS - 1);
    assert!(d.ciam.console_session_alive(session.expose()).await.expect("alive"));
    d.clock.advance(1);
    assert!(!d.ciam.console_session_alive(session.expose()).await.expect("alive"));
}

#[tokio::test]
async fn a_configured_admin_token_stored_the_old_way_is_stored_again_salted() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let store = ciam_store::open(&db.url, &ciam_store::DbOptions::default()).await.expect("store");
    let token = "a-configured-admin-token-0123456789-abcdef";
    let unsalted = ciam_core::token::sha256_hex(token.as_bytes());
    store.shared().put_setting("admin_token_digest", &unsalted).await.expect("an old digest");
    let ciam = Ciam::open(store.shared(), Arc::new(OffsetClock::default()), config()).await.expect("domain");
    assert!(ciam.is_admin_token(token).await.expect("check"), "the old form still matches");
    ciam.ensure_admin_token(Some(token)).await.expect("token");
    let stored = store.shared().get_setting("admin_token_digest").await.expect("read").expect("a digest");
    assert!(stored.starts_with("v2$") && stored != unsalted, "{stored}");
    assert!(ciam.is_admin_token(token).await.expect("check"));

    // Stored salted, the same token at the next start is left as it is,
    // and so are the console's sessions.
    let (session, _) = ciam.open_console_session(token).await.expect("sign in").expect("a session");
    ciam.ensure_admin_token(Some(token)).await.expect("token");
    assert_eq!(store.shared().get_setting("admin_token_digest").await.expect("read"), Some(stored));
    assert!(ciam.console_session_alive(session.expose()).await.expect("alive"));
}
