//! One conformance suite, run on both backends: every test body takes a
//! fresh store, once on SQLite (a new file) and once on PostgreSQL (a new
//! database, dropped afterwards).

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

use std::sync::Arc;

use ciam_core::ErrorCode;
use ciam_core::mobile::Mobile;
use ciam_core::model::{
    Action, AddressKey, App, AppAccess, AuditEntry, AuditEvent, AuditQuery, ClientId, Counter, Device, FailureAudit,
    FailureState, Flow, Guess, HistoryEntry, LockKey, Outcome, Reservation, Session, SigningAlg, SigningKeyRecord,
    StateGrant, Status, ThrottleState, TokenDigest, User, UserId,
};
use ciam_core::policy::{LockoutPolicy, ThrottlePolicy};
use ciam_core::store::{ActivityCount, Purge, Store, StoreError};
mod common;
use common::{on_both_stores, with_store};

on_both_stores!(
    failure_counter_is_atomic_under_concurrency,
    checks_in_flight_count_against_the_limit,
    a_check_whose_caller_went_away_gives_back_what_it_took,
    expired_lock_starts_a_new_count,
    users_are_unique_by_mobile,
    a_batch_of_users_skips_taken_mobiles_and_ids,
    password_change_keeps_history_and_ends_sessions,
    state_grants_are_single_use_and_flow_bound,
    sessions_expire_and_revoke,
    key_rotation_retires_the_previous_key,
    only_one_first_key_is_stored,
    apps_members_settings_and_audit,
    export_reads_back_what_was_written,
    concurrent_audit_events_are_each_stored_once,
    refusals_are_counted_one_event_per_address_outcome_and_minute,
    a_session_and_its_audit_event_commit_together,
    two_counters_count_and_lock_in_one_commit,
    a_count_below_the_limit_is_forgotten_after_the_reset_time,
    address_windows_count_every_attempt_exactly,
    a_session_gives_back_its_reserved_attempt,
    unlocking_an_account_clears_its_address_counters,
    the_purge_goes_in_batches_and_keeps_what_is_needed,
    one_holder_at_a_time_holds_a_lease,
    the_console_reads_activity_locks_memberships_and_sessions,
);

fn uid(id: &str) -> UserId {
    UserId::new(id)
}

fn cid(id: &str) -> ClientId {
    ClientId::new(id)
}

fn digest(d: &str) -> TokenDigest {
    TokenDigest::new(d)
}

fn key(k: &str) -> LockKey {
    LockKey::new(k)
}

fn mobile(e164: &str) -> Mobile {
    Mobile::from_stored(e164.to_owned())
}

fn policy(max_failures: u32, lock_seconds: i64) -> LockoutPolicy {
    LockoutPolicy { max_failures, lock_seconds, ..Default::default() }
}

/// Counts one failure on one counter.
async fn fail_once(
    store: &dyn Store,
    k: &str,
    now: i64,
    policy: LockoutPolicy,
    audit: FailureAudit<'_>,
) -> Result<(FailureState, i64), StoreError> {
    let counter = Counter { key: key(k), limit: policy.max_failures };
    let (states, id) = store.record_failure(&[counter], now, &policy, audit, "no-place").await?;
    assert_eq!(states.len(), 1);
    Ok((states[0], id))
}

/// The state of one key and the user with a mobile.
async fn lookup(store: &dyn Store, k: &str, mobile_e164: Option<&str>) -> (Option<FailureState>, Option<User>) {
    let found = store.login_lookup(&[key(k)], None, mobile_e164.map(mobile).as_ref()).await.expect("lookup");
    assert_eq!(found.counts.len(), 1);
    assert_eq!(found.throttle, None);
    (found.counts[0], found.user)
}

fn user(id: &str, mobile_e164: &str) -> User {
    User {
        id: uid(id),
        mobile: mobile(mobile_e164),
        user_name: Some(format!("name-{id}")),
        name: None,
        email: Some("a@example.com".into()),
        disabled: false,
        password_hash: format!("hash-{id}"),
        password_changed_at: 100,
        created_at: 100,
        updated_at: 100,
    }
}

fn audit_event(at: i64, mobile: &str) -> AuditEvent {
    AuditEvent {
        at,
        action: Action::Login,
        outcome: Outcome::Status(Status::Success),
        mobile: Some(mobile.into()),
        user_id: None,
        client_id: Some("c1".into()),
        device: Device {
            os_version: Some("ios".into()),
            fingerprint: Some("fp".into()),
            claimed_ip: None,
            agent: Some("agent".into()),
        },
        ip: Some("127.0.0.1".into()),
        request_id: Some("req-1".into()),
    }
}

const WRONG: Outcome = Outcome::Refused(ErrorCode::InvalidCredentials);
const LOCKED: Outcome = Outcome::Refused(ErrorCode::AccountLocked);

/// A failed attempt's event: outcome `WRONG`, or `LOCKED` for the failure
/// that locks.
fn failed(at: i64) -> AuditEvent {
    AuditEvent { outcome: WRONG, ..audit_event(at, "+8615200000000") }
}

fn counted(event: &AuditEvent) -> FailureAudit<'_> {
    FailureAudit { event, locked: LOCKED }
}

fn app(id: &str) -> App {
    App {
        client_id: cid(id),
        name: "Demo".into(),
        enabled: true,
        password_expiry_check: false,
        access: AppAccess::All,
        session_ttl: 432_000,
        id_token_ttl: 300,
        // Not the default, so that a store that drops it is caught.
        id_token_alg: SigningAlg::EdDSA,
        created_at: 100,
        oidc: Default::default(),
        signup: Default::default(),
    }
}

async fn newest(store: &dyn Store, limit: u32) -> Vec<AuditEntry> {
    store.list_audit(&AuditQuery { limit, ..Default::default() }).await.expect("list")
}

async fn failure_counter_is_atomic_under_concurrency(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            fail_once(store.as_ref(), "+8615200000000", 1000, policy(10, 1800), counted(&failed(1000))).await
        }));
    }
    let mut counts = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for t in tasks {
        let (state, id) = t.await.expect("task").expect("record");
        counts.push(state.failures);
        ids.insert(id, state.failures);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=40).collect::<Vec<u32>>(), "every failure counted exactly once");
    // Each failure's event is stored with it, under the id it was given,
    // with the outcome of its own count: the 10th and later ones locked.
    let events = store.list_audit(&AuditQuery { limit: 100, ..Default::default() }).await.expect("list");
    assert_eq!(events.len(), 40);
    for e in &events {
        let failures = ids.get(&e.id).copied().expect("an event per returned id");
        assert_eq!(e.event.outcome, if failures >= 10 { LOCKED } else { WRONG }, "event of failure {failures}");
    }
    let state = store.failure_state(&key("+8615200000000")).await.expect("state").expect("row");
    assert_eq!(state.failures, 40);
    assert_eq!(state.locked_until, Some(2800));
    // A right password while locked forgets nothing; once the lock has run
    // out it forgets the count.
    let held = store.settle_match(&[key("+8615200000000")], "p", 2000).await.expect("settle");
    assert_eq!(held, vec![FailureState { failures: 40, locked_until: Some(2800) }]);
    let cleared = store.settle_match(&[key("+8615200000000")], "p", 2800).await.expect("settle");
    assert_eq!(cleared, vec![FailureState { failures: 0, locked_until: None }]);
    assert_eq!(store.settle_match(&[key("nobody")], "p", 2800).await.expect("settle"), vec![]);
}

async fn refusals_are_counted_one_event_per_address_outcome_and_minute(store: Arc<dyn Store>) {
    let refused = |at: i64, ip: &str, code: ErrorCode| AuditEvent {
        outcome: Outcome::Refused(code),
        ip: Some(ip.to_owned()),
        ..audit_event(at, "")
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            let event = refused(600 + i % 60, "10.0.0.1", ErrorCode::BodyNotJson);
            tokio::spawn(async move { store.count_refusal(&event).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("count");
    }
    store.count_refusal(&refused(660, "10.0.0.1", ErrorCode::BodyNotJson)).await.expect("next minute");
    store.count_refusal(&refused(601, "10.0.0.2", ErrorCode::BodyNotJson)).await.expect("another address");
    store.count_refusal(&refused(602, "10.0.0.1", ErrorCode::AddressThrottled)).await.expect("another outcome");
    store.insert_audit(&refused(603, "10.0.0.1", ErrorCode::BodyNotJson)).await.expect("a plain event");
    let mut events: Vec<(i64, Option<String>, &str, i64)> = newest(store.as_ref(), 100)
        .await
        .iter()
        .map(|e| (e.event.at, e.event.ip.clone(), e.event.outcome.as_str(), e.count))
        .collect();
    events.sort();
    let body = ErrorCode::BodyNotJson.as_str();
    let first = events.iter().find(|e| e.3 == 50).expect("one event for the 50 of one minute");
    assert!((600..660).contains(&first.0) && first.2 == body, "{events:?}");
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.contains(&(660, Some("10.0.0.1".into()), body, 1)), "{events:?}");
    assert!(events.contains(&(601, Some("10.0.0.2".into()), body, 1)), "{events:?}");
    assert!(events.contains(&(602, Some("10.0.0.1".into()), ErrorCode::AddressThrottled.as_str(), 1)));
    assert!(events.contains(&(603, Some("10.0.0.1".into()), body, 1)), "plain events are not merged");
    // One /64 is one address; a copied minute keeps its count.
    for ip in ["2001:db8:0:1::1", "2001:db8:0:1::2"] {
        store.count_refusal(&refused(610, ip, ErrorCode::BodyNotJson)).await.expect("count");
    }
    store.insert_counted(&refused(620, "2001:db8:0:1::3", ErrorCode::BodyNotJson), 7).await.expect("copy");
    let v6: Vec<i64> = newest(store.as_ref(), 100)
        .await
        .iter()
        .filter(|e| e.event.ip.as_deref().is_some_and(|ip| ip.starts_with("2001:db8")))
        .map(|e| e.count)
        .collect();
    assert_eq!(v6, vec![9], "one row for the /64 and the minute");
}

/// Takes a place for one check on `k` (limit 10) at `now`, named `id`.
async fn reserve(store: &dyn Store, k: &str, now: i64, id: &str) -> Guess {
    let counter = Counter { key: key(k), limit: 10 };
    let (guesses, window) = store.begin_check(&[counter], now, 86_400, now + 30, id, None).await.expect("reserve");
    assert_eq!(window, None, "no address, no window");
    guesses[0]
}

async fn checks_in_flight_count_against_the_limit(store: Arc<dyn Store>) {
    // 40 checks at once on a limit of 10: exactly 10 get a place.
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = format!("attempt-{i}");
                let taken = reserve(store.as_ref(), "k", 1000, &id).await.reserved;
                (id, taken)
            })
        })
        .collect();
    let mut placed = Vec::new();
    for t in tasks {
        let (id, taken) = t.await.expect("task");
        if taken {
            placed.push(id);
        }
    }
    assert_eq!(placed.len(), 10, "checks in flight are bounded by the attempts left");
    // Nine of them fail: each failure gives its place back as it counts.
    let lockout = policy(10, 60);
    let counter = Counter { key: key("k"), limit: 10 };
    for id in &placed[..9] {
        let event = failed(1001);
        let audit = counted(&event);
        store.record_failure(std::slice::from_ref(&counter), 1001, &lockout, audit, id).await.expect("record");
    }
    let refused = reserve(store.as_ref(), "k", 1002, "late").await;
    assert!(!refused.reserved, "9 failures and 1 check in flight leave no place");
    assert_eq!(refused.state, FailureState { failures: 9, locked_until: None });
    // The last check is given back (its hash never ran): one place again,
    // and giving it back twice changes nothing.
    store.release_place(&placed[9]).await.expect("release");
    store.release_place(&placed[9]).await.expect("release again");
    assert!(reserve(store.as_ref(), "k", 1003, "again").await.reserved);
    assert!(!reserve(store.as_ref(), "k", 1003, "no room").await.reserved, "a double release made no room");
    // A right password forgets the failures and gives its place back.
    let settled = store.settle_match(&[key("k")], "again", 1004).await.expect("settle");
    assert_eq!(settled, vec![FailureState { failures: 0, locked_until: None }]);
    for i in 0..10 {
        assert!(reserve(store.as_ref(), "k", 1005 + i, &format!("fresh-{i}")).await.reserved, "place {i}");
    }
    assert!(!reserve(store.as_ref(), "k", 1020, "eleventh").await.reserved);
    // Each place lapses 30 s after it was taken, whatever comes after it:
    // the first (taken at 1005) at 1035, while the others still hold.
    assert!(!reserve(store.as_ref(), "k", 1034, "busy").await.reserved);
    assert!(reserve(store.as_ref(), "k", 1035, "after the first lapsed").await.reserved);
    assert!(!reserve(store.as_ref(), "k", 1035, "one lapsed, one taken").await.reserved);
    // A locked counter gives no place, and says until when.
    let locked = fail_once(store.as_ref(), "l", 1000, policy(1, 60), counted(&failed(1000))).await.expect("lock");
    assert_eq!(locked.0.locked_until, Some(1060));
    let refused = reserve(store.as_ref(), "l", 1010, "locked").await;
    assert!(!refused.reserved);
    assert_eq!(refused.state.locked_until, Some(1060));
    // Once the lock has run out, the count starts again.
    let after = reserve(store.as_ref(), "l", 1060, "unlocked").await;
    assert!(after.reserved);
    assert_eq!(after.state, FailureState { failures: 0, locked_until: None });
    // Retention deletes lapsed places, and keeps a counter with live ones.
    assert!(store.purge(Purge::LapsedChecks(2000), 1000).await.expect("purge") >= 10);
    // A check on two counters counts in its address's window only when it
    // got both places.
    let address = AddressKey::new("10.0.0.9");
    let two = [Counter { key: key("m|10.0.0.9"), limit: 10 }, Counter { key: key("m"), limit: 1 }];
    let (guesses, window) =
        store.begin_check(&two, 3000, 86_400, 3030, "both", Some((&address, 3600))).await.expect("check");
    assert!(guesses.iter().all(|g| g.reserved));
    assert_eq!(window, Some(ThrottleState { window_start: 3000, failures: 1 }));
    let (guesses, window) =
        store.begin_check(&two, 3001, 86_400, 3031, "refused", Some((&address, 3600))).await.expect("check");
    assert_eq!(
        guesses.iter().map(|g| g.reserved).collect::<Vec<_>>(),
        [true, false],
        "the account's one place is held"
    );
    assert_eq!(window, None, "an attempt refused by a counter is not counted at its address");
}

async fn a_check_whose_caller_went_away_gives_back_what_it_took(store: Arc<dyn Store>) {
    let address = AddressKey::new("10.0.0.10");
    let one = [Counter { key: key("gone"), limit: 1 }];
    // The caller stops waiting as soon as the check is sent; the check
    // still runs to its end, then gives back its place and its attempt.
    for i in 0..5 {
        let id = format!("gone-{i}");
        let sent = store.begin_check(&one, 4000, 86_400, 4030, &id, Some((&address, 3600)));
        // A check that answered first is given back by its caller, as a
        // call gives back its own.
        if let Ok(answered) = tokio::time::timeout(std::time::Duration::from_micros(1), sent).await {
            let (guesses, window) = answered.expect("check");
            if guesses[0].reserved {
                store.release_place(&id).await.expect("place given back");
            }
            if let Some(window) = window {
                let reserved = Reservation { key: address.clone(), window_start: window.window_start };
                store.release_attempt(&reserved).await.expect("attempt given back");
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (guesses, window) =
        store.begin_check(&one, 4001, 86_400, 4031, "here", Some((&address, 3600))).await.expect("check");
    assert!(guesses[0].reserved, "no place is held by a check nobody waits for");
    assert_eq!(window.map(|w| w.failures), Some(1), "nor an attempt in the address's window");
}

async fn expired_lock_starts_a_new_count(store: Arc<dyn Store>) {
    for i in 1..=3 {
        let (s, _) = fail_once(store.as_ref(), "k", 1000, policy(3, 60), counted(&failed(1000))).await.expect("record");
        assert_eq!(s.failures, i);
        assert_eq!(s.locked_until, (i == 3).then_some(1060));
    }
    let (after, id) =
        fail_once(store.as_ref(), "k", 1060, policy(3, 60), counted(&failed(1060))).await.expect("record");
    assert_eq!((after.failures, after.locked_until), (1, None));
    let outcomes: Vec<(i64, Outcome)> =
        newest(store.as_ref(), 10).await.into_iter().map(|e| (e.id, e.event.outcome)).collect();
    assert_eq!(outcomes[0], (id, WRONG), "a count that starts again is not a lock");
    let kinds: Vec<Outcome> = outcomes.iter().rev().map(|(_, o)| *o).collect();
    assert_eq!(kinds, [WRONG, WRONG, LOCKED, WRONG]);
    let failures = |now| Purge::Failures { now, reset_seconds: 86_400 };
    assert_eq!(store.purge(failures(1060), 10).await.expect("purge"), 0, "a count that matters is kept");
    assert_eq!(store.purge(failures(1060 + 86_400), 10).await.expect("purge"), 1, "a forgotten count goes");
}

async fn users_are_unique_by_mobile(store: Arc<dyn Store>) {
    store.insert_user(&user("u1", "+8615200000000")).await.expect("insert");
    let dup = store.insert_user(&user("u2", "+8615200000000")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store.insert_user(&user("u2", "+8615200000001")).await.expect("insert");
    let mut moved = user("u2", "+8615200000000");
    moved.updated_at = 200;
    assert!(matches!(store.update_user(&moved).await, Err(StoreError::Conflict(_))));
    let (state, found) = lookup(store.as_ref(), "+8615200000000", Some("+8615200000000")).await;
    assert_eq!((state, found), (None, Some(user("u1", "+8615200000000"))));
    fail_once(store.as_ref(), "+8615200000000", 100, policy(10, 60), counted(&failed(100))).await.expect("record");
    let (state, found) = lookup(store.as_ref(), "+8615200000000", Some("+8615200000000")).await;
    assert_eq!(state.map(|s| s.failures), Some(1));
    assert!(found.is_some());
    let (state, found) = lookup(store.as_ref(), "x:junk", None).await;
    assert_eq!((state, found), (None, None));
    assert_eq!(store.list_users(None, 10, 0).await.expect("list").len(), 2);
    assert_eq!(store.list_users(Some(&mobile("+8615200000001")), 10, 0).await.expect("list")[0].id.as_str(), "u2");
    assert!(store.delete_user(&uid("u1")).await.expect("delete"));
    assert!(!store.delete_user(&uid("u1")).await.expect("delete"));
}

async fn a_batch_of_users_skips_taken_mobiles_and_ids(store: Arc<dyn Store>) {
    store.insert_user(&user("u1", "+8615200000000")).await.expect("insert");
    // More than one statement's worth, with a taken mobile and a taken id.
    let mut batch: Vec<User> = (0..45).map(|i| user(&format!("b{i:02}"), &format!("+86139000000{i:02}"))).collect();
    batch[3] = user("b03", "+8615200000000");
    batch[30] = user("u1", "+8615299999999");
    let stored = store.insert_users(&batch).await.expect("insert");
    assert_eq!(stored.len(), 45);
    assert!(!stored[3] && !stored[30], "a taken mobile and a taken id are skipped");
    assert_eq!(stored.iter().filter(|s| **s).count(), 43);
    assert_eq!(store.get_user(&uid("b44")).await.expect("get"), Some(batch[44].clone()));
    // Again: all are there.
    assert!(store.insert_users(&batch).await.expect("insert").iter().all(|s| !s));
    assert!(store.insert_users(&[]).await.expect("insert").is_empty());
    // Pages in id order, each after the last id of the one before.
    let first = store.users_after(None, 20).await.expect("page");
    let second = store.users_after(Some(&first[19].id), 20).await.expect("page");
    let third = store.users_after(Some(&second[19].id), 20).await.expect("page");
    assert_eq!((first.len(), second.len(), third.len()), (20, 20, 4));
    let ids: Vec<&str> = first.iter().chain(&second).chain(&third).map(|u| u.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "44 distinct users in id order");
}

async fn password_change_keeps_history_and_ends_sessions(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let session = Session { user_id: uid("u1"), client_id: cid("c1"), expires_at: 9999 };
    store.insert_session(&digest("d1"), &session, 100).await.expect("session");
    for (i, hash) in ["h2", "h3", "h4"].iter().enumerate() {
        assert!(store.set_password(&uid("u1"), hash, 200 + i as i64, 2).await.expect("set"));
    }
    let u = store.get_user(&uid("u1")).await.expect("get").expect("user");
    assert_eq!((u.password_hash.as_str(), u.password_changed_at), ("h4", 202));
    assert_eq!(store.password_history(&uid("u1"), 5).await.expect("history"), vec!["h3", "h2"]);
    assert!(
        store.get_session_user(&digest("d1"), 100).await.expect("get").is_none(),
        "sessions end with a password change"
    );
    store.upgrade_password_hash(&uid("u1"), "stale", "h9").await.expect("upgrade");
    assert_eq!(store.get_user(&uid("u1")).await.expect("get").expect("user").password_hash, "h4");
    store.upgrade_password_hash(&uid("u1"), "h4", "h4b").await.expect("upgrade");
    assert_eq!(store.get_user(&uid("u1")).await.expect("get").expect("user").password_hash, "h4b");
    assert!(!store.set_password(&uid("nobody"), "h", 1, 2).await.expect("set"));
}

async fn state_grants_are_single_use_and_flow_bound(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let grant = StateGrant { user_id: uid("u1"), client_id: cid("c1"), flow: Flow::PasswordExpired, expires_at: 700 };
    store.insert_state_grant(&digest("s1"), &grant).await.expect("insert");
    assert_eq!(store.get_state_grant(&digest("s1"), 100).await.expect("get"), Some(grant.clone()));
    assert!(store.get_state_grant(&digest("s1"), 700).await.expect("get").is_none(), "expired");
    assert!(
        store.take_state_grant(&digest("s1"), 100, &[Flow::PasswordWarn]).await.expect("take").is_none(),
        "wrong flow"
    );
    let both = [Flow::PasswordWarn, Flow::PasswordExpired];
    assert_eq!(store.take_state_grant(&digest("s1"), 100, &both).await.expect("take"), Some(grant));
    assert!(store.take_state_grant(&digest("s1"), 100, &both).await.expect("take").is_none(), "used up");
}

async fn sessions_expire_and_revoke(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let s = Session { user_id: uid("u1"), client_id: cid("c1"), expires_at: 500 };
    store.insert_session(&digest("d1"), &s, 100).await.expect("insert");
    store.insert_session(&digest("d2"), &s, 100).await.expect("insert");
    let (joined, owner) = store.get_session_user(&digest("d1"), 499).await.expect("get").expect("live");
    assert_eq!((joined, owner), (s.clone(), user("u1", "+8615200000000")));
    assert!(store.get_session_user(&digest("d1"), 500).await.expect("get").is_none());
    assert_eq!(store.session_app(&digest("d1"), 499).await.expect("app"), Some(cid("c1")));
    assert!(!store.delete_session(&digest("d1"), &cid("c2")).await.expect("delete"), "another app's session stays");
    assert!(store.delete_session(&digest("d1"), &cid("c1")).await.expect("delete"));
    assert!(!store.delete_session(&digest("d1"), &cid("c1")).await.expect("delete"));
    assert_eq!(store.session_app(&digest("d1"), 499).await.expect("app"), None);
    assert_eq!(store.delete_user_sessions(&uid("u1")).await.expect("delete"), 1);
    store.insert_session(&digest("d3"), &s, 100).await.expect("insert");
    assert_eq!(store.purge(Purge::Sessions(600), 10).await.expect("purge"), 1);
    assert_eq!(store.purge(Purge::Sessions(600), 10).await.expect("purge"), 0);
}

fn signing_key(kid: &str, alg: SigningAlg, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord { kid: kid.into(), alg, private_pkcs8: vec![1], created_at, retired_at: None, publish_until: None }
}

async fn current_kids(store: &dyn Store) -> Vec<(String, SigningAlg)> {
    let keys = store.list_signing_keys().await.expect("keys");
    let mut current: Vec<_> = keys.into_iter().filter(|k| k.retired_at.is_none()).map(|k| (k.kid, k.alg)).collect();
    current.sort_by(|a, b| a.0.cmp(&b.0));
    current
}

async fn only_one_first_key_is_stored(store: Arc<dyn Store>) {
    // Instances started together: one first key of each algorithm is
    // stored, the others not.
    assert!(store.insert_first_signing_key(&signing_key("a", SigningAlg::RS256, 1)).await.expect("first"));
    assert!(!store.insert_first_signing_key(&signing_key("b", SigningAlg::RS256, 1)).await.expect("second"));
    assert!(store.insert_first_signing_key(&signing_key("e", SigningAlg::EdDSA, 1)).await.expect("first EdDSA"));
    assert!(!store.insert_first_signing_key(&signing_key("f", SigningAlg::EdDSA, 1)).await.expect("second EdDSA"));
    assert_eq!(current_kids(store.as_ref()).await, [("a".into(), SigningAlg::RS256), ("e".into(), SigningAlg::EdDSA)]);
    // A rotation retires them, then stores the next: still one current key
    // of each.
    let next = [signing_key("c", SigningAlg::RS256, 2), signing_key("d", SigningAlg::EdDSA, 2)];
    store.rotate_signing_keys(&next, 2, 90).await.expect("rotate");
    assert_eq!(current_kids(store.as_ref()).await, [("c".into(), SigningAlg::RS256), ("d".into(), SigningAlg::EdDSA)]);
    // A rotation that would leave two current keys of one algorithm stores
    // nothing.
    let twice = [signing_key("g", SigningAlg::RS256, 3), signing_key("h", SigningAlg::RS256, 3)];
    assert!(store.rotate_signing_keys(&twice, 3, 90).await.is_err());
    assert_eq!(current_kids(store.as_ref()).await, [("c".into(), SigningAlg::RS256), ("d".into(), SigningAlg::EdDSA)]);
}

async fn key_rotation_retires_the_previous_key(store: Arc<dyn Store>) {
    let k1 = SigningKeyRecord { private_pkcs8: vec![1, 2, 3], ..signing_key("k1", SigningAlg::RS256, 100) };
    let e1 = signing_key("e1", SigningAlg::EdDSA, 100);
    store.insert_signing_key(&k1).await.expect("insert");
    store.insert_signing_key(&e1).await.expect("insert");
    let k2 = SigningKeyRecord { private_pkcs8: vec![4, 5], ..signing_key("k2", SigningAlg::RS256, 200) };
    let e2 = signing_key("e2", SigningAlg::EdDSA, 200);
    store.rotate_signing_keys(&[k2.clone(), e2.clone()], 200, 9000).await.expect("rotate");
    let keys = store.list_signing_keys().await.expect("list");
    assert_eq!(keys.len(), 4);
    let retired = |k: SigningKeyRecord| SigningKeyRecord { retired_at: Some(200), publish_until: Some(9000), ..k };
    assert_eq!(keys, [k2, e2, retired(k1), retired(e1)], "newest first, then by kid, descending");
}

async fn apps_members_settings_and_audit(store: Arc<dyn Store>) {
    let mut a = app("c1");
    store.insert_app(&a).await.expect("app");
    a.access = AppAccess::Assigned;
    a.enabled = false;
    assert!(store.update_app(&a).await.expect("update"));
    assert_eq!(store.get_app(&cid("c1")).await.expect("get"), Some(a.clone()));
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    store.add_member(&cid("c1"), &uid("u1")).await.expect("member");
    store.add_member(&cid("c1"), &uid("u1")).await.expect("member twice is fine");
    assert!(store.is_member(&cid("c1"), &uid("u1")).await.expect("is"));
    assert!(store.remove_member(&cid("c1"), &uid("u1")).await.expect("remove"));
    assert!(!store.is_member(&cid("c1"), &uid("u1")).await.expect("is"));
    assert!(store.delete_app(&cid("c1")).await.expect("delete"));
    assert!(store.list_apps().await.expect("list").is_empty());

    assert!(store.put_setting_if_absent("s", "1").await.expect("put"));
    assert!(!store.put_setting_if_absent("s", "2").await.expect("put"));
    store.put_setting("s", "3").await.expect("put");
    assert_eq!(store.get_setting("s").await.expect("get").as_deref(), Some("3"));

    for i in 0..3 {
        let e = audit_event(100 + i, if i == 1 { "+1" } else { "+2" });
        store.insert_audit(&e).await.expect("audit");
    }
    let all = store.list_audit(&AuditQuery { limit: 10, ..Default::default() }).await.expect("list");
    assert_eq!(all.iter().map(|e| e.event.at).collect::<Vec<_>>(), vec![102, 101, 100], "newest first");
    let one = store
        .list_audit(&AuditQuery { mobile: Some("+1".into()), limit: 10, ..Default::default() })
        .await
        .expect("list");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].event.at, 101);
}

async fn export_reads_back_what_was_written(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    store.add_member(&cid("c1"), &uid("u1")).await.expect("member");
    assert_eq!(store.list_members().await.expect("members"), vec![(cid("c1"), uid("u1"))]);
    store.put_setting("b", "2").await.expect("setting");
    store.put_setting("a", "1").await.expect("setting");
    assert_eq!(
        store.list_settings().await.expect("settings"),
        vec![("a".into(), "1".into()), ("b".into(), "2".into())]
    );
    let entry = HistoryEntry { user_id: uid("u1"), password_hash: "old".into(), replaced_at: 50 };
    store.insert_password_history(&entry).await.expect("history");
    assert_eq!(store.list_password_history().await.expect("history"), vec![entry]);
    let live = Session { user_id: uid("u1"), client_id: cid("c1"), expires_at: 900 };
    store.insert_session(&digest("live"), &live, 100).await.expect("session");
    store.insert_session(&digest("dead"), &Session { expires_at: 150, ..live.clone() }, 100).await.expect("session");
    let sessions = store.list_sessions(200).await.expect("sessions");
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].digest.as_str(), &sessions[0].session, sessions[0].created_at), ("live", &live, 100));
    for i in 0..5 {
        let e = AuditEvent { action: Action::Logout, mobile: None, client_id: None, ..audit_event(i, "") };
        store.insert_audit(&e).await.expect("audit");
    }
    let first = store.audit_page(0, 3).await.expect("page");
    assert_eq!(first.iter().map(|e| e.event.at).collect::<Vec<_>>(), vec![0, 1, 2]);
    let rest = store.audit_page(first[2].id, 3).await.expect("page");
    assert_eq!(rest.iter().map(|e| e.event.at).collect::<Vec<_>>(), vec![3, 4]);
}

/// Events written at once are committed in batches; each caller's event is
/// stored exactly once, and an event the database refuses (PostgreSQL takes
/// no NUL in text) fails alone without taking the batch with it.
async fn concurrent_audit_events_are_each_stored_once(store: Arc<dyn Store>) {
    let mut writes = Vec::new();
    for i in 0..200 {
        let store = Arc::clone(&store);
        writes.push(tokio::spawn(async move {
            let mut e = audit_event(1_000 + i, &format!("+{i}"));
            if i == 7 {
                e.device.agent = Some("bad\0agent".into());
            }
            store.insert_audit(&e).await
        }));
    }
    let mut refused = 0;
    for (i, w) in writes.into_iter().enumerate() {
        match w.await.expect("join") {
            Ok(()) => {}
            Err(_) if i == 7 => refused += 1,
            Err(e) => panic!("event {i}: {e}"),
        }
    }
    let stored = store.list_audit(&AuditQuery { limit: 500, ..Default::default() }).await.expect("list");
    let mut ats: Vec<i64> = stored.iter().map(|e| e.event.at).collect();
    ats.sort_unstable();
    let expected: Vec<i64> = (1_000..1_200).filter(|at| refused == 0 || *at != 1_007).collect();
    assert_eq!(ats, expected, "every accepted event once, nothing else");
    for e in &stored {
        let expected = format!("+{}", e.event.at - 1_000);
        assert_eq!(e.event.mobile.as_deref(), Some(expected.as_str()), "fields stay with their row");
    }
}

async fn a_session_and_its_audit_event_commit_together(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let session = Session { user_id: uid("u1"), client_id: cid("c1"), expires_at: 9999 };
    let event = audit_event(100, "+8615200000000");
    let id = store.insert_session_audited(&digest("d1"), &session, 100, &event, None, None).await.expect("session");
    assert!(store.get_session_user(&digest("d1"), 100).await.expect("get").is_some());
    let stored = store.list_audit(&AuditQuery { limit: 10, ..Default::default() }).await.expect("list");
    assert_eq!(stored, vec![AuditEntry { id, event: event.clone(), count: 1 }]);

    // A session that cannot be stored takes its event with it.
    let dup = store.insert_session_audited(&digest("d1"), &session, 100, &audit_event(101, "+1"), None, None).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(store.list_audit(&AuditQuery { limit: 10, ..Default::default() }).await.expect("list").len(), 1);
    // The failed group left no transaction open behind it: every connection
    // still writes, and each write is seen at once.
    for i in 2..8 {
        let name = format!("d{i}");
        store
            .insert_session_audited(&digest(&name), &session, 100, &audit_event(100 + i, "+2"), None, None)
            .await
            .expect("session");
        assert!(store.get_session_user(&digest(&name), 100).await.expect("get").is_some());
        let (state, _) =
            fail_once(store.as_ref(), "k", 100, policy(100, 60), counted(&failed(100 + i))).await.expect("record");
        assert_eq!(state.failures, u32::try_from(i - 1).expect("small"));
    }
    assert_eq!(store.list_audit(&AuditQuery { limit: 50, ..Default::default() }).await.expect("list").len(), 13);
}

async fn two_counters_count_and_lock_in_one_commit(store: Arc<dyn Store>) {
    let pair = Counter { key: key("+8615200000000|192.0.2.7"), limit: 3 };
    let account = Counter { key: key("+8615200000000"), limit: 5 };
    let counters = [pair.clone(), account.clone()];
    let policy = policy(3, 60);
    for i in 1..=2 {
        let (states, _) =
            store.record_failure(&counters, 100, &policy, counted(&failed(100)), "p").await.expect("record");
        assert_eq!(states.iter().map(|s| s.failures).collect::<Vec<_>>(), [i, i]);
        assert!(states.iter().all(|s| s.locked_until.is_none()));
    }
    let (states, id) = store.record_failure(&counters, 100, &policy, counted(&failed(100)), "p").await.expect("record");
    assert_eq!(states[0], FailureState { failures: 3, locked_until: Some(160) }, "the pair locks at its limit");
    assert_eq!(states[1], FailureState { failures: 3, locked_until: None });
    assert_eq!(
        newest(store.as_ref(), 1).await[0],
        AuditEntry { id, event: AuditEvent { outcome: LOCKED, ..failed(100) }, count: 1 }
    );
    // From another address: a new pair, and the account reaches its limit.
    let other = [Counter { key: key("+8615200000000|198.51.100.1"), limit: 3 }, account.clone()];
    store.record_failure(&other, 110, &policy, counted(&failed(110)), "p").await.expect("record");
    let (states, _) = store.record_failure(&other, 110, &policy, counted(&failed(110)), "p").await.expect("record");
    assert_eq!(states[0].failures, 2);
    assert_eq!(states[1], FailureState { failures: 5, locked_until: Some(170) }, "the account locks for everyone");
    assert_eq!(newest(store.as_ref(), 1).await[0].event.outcome, LOCKED);
    let found = store.login_lookup(&[pair.key, account.key], None, None).await.expect("lookup");
    assert_eq!(found.counts, vec![Some(FailureState { failures: 3, locked_until: Some(160) }), Some(states[1])]);
}

async fn a_count_below_the_limit_is_forgotten_after_the_reset_time(store: Arc<dyn Store>) {
    let forgetful = LockoutPolicy { failure_reset_seconds: 100, ..policy(3, 60) };
    let fail = |now| {
        let store = Arc::clone(&store);
        async move { fail_once(store.as_ref(), "k", now, forgetful, counted(&failed(now))).await.expect("record").0 }
    };
    assert_eq!(fail(1000).await.failures, 1);
    assert_eq!(fail(1099).await.failures, 2, "99 s after the last failure, it still counts");
    assert_eq!(fail(1199).await.failures, 1, "100 s after the last failure, it is forgotten");
    assert_eq!(fail(1200).await.failures, 2);
    let locked = fail(1201).await;
    assert_eq!(locked, FailureState { failures: 3, locked_until: Some(1261) });
    assert_eq!(fail(1250).await.failures, 4, "a lock is not forgotten while it holds");
}

async fn address_windows_count_every_attempt_exactly(store: Arc<dyn Store>) {
    let throttle = ThrottlePolicy { ip_max_failures: 10, ip_window_seconds: 60, ..Default::default() };
    let address = AddressKey::new("192.0.2.7");
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (store, address, throttle) = (Arc::clone(&store), address.clone(), throttle.clone());
        tasks.push(tokio::spawn(async move { store.reserve_attempt(&address, 1000, &throttle).await }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        let window = t.await.expect("task").expect("reserve");
        assert_eq!(window.window_start, 1000);
        counts.push(window.failures);
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=30).collect::<Vec<u32>>(), "each attempt counted once: ten fit, twenty do not");
    let found = store.login_lookup(&[key("k")], Some(&address), None).await.expect("lookup");
    assert_eq!(found.throttle, Some(ThrottleState { window_start: 1000, failures: 30 }));
    // A right password gives its attempt back, only in the window it was counted in.
    store.release_attempt(&Reservation { key: address.clone(), window_start: 1000 }).await.expect("release");
    store.release_attempt(&Reservation { key: address.clone(), window_start: 999 }).await.expect("release");
    let found = store.login_lookup(&[key("k")], Some(&address), None).await.expect("lookup");
    assert_eq!(found.throttle.map(|w| w.failures), Some(29));
    // A window that has ended starts again; one that has not is kept by the purge.
    let windows = |now| Purge::Windows { now, window_seconds: 60 };
    assert_eq!(store.purge(windows(1059), 10).await.expect("purge"), 0);
    let next = store.reserve_attempt(&address, 1060, &throttle).await.expect("reserve");
    assert_eq!(next, ThrottleState { window_start: 1060, failures: 1 });
    assert_eq!(store.purge(windows(1120), 10).await.expect("purge"), 1);
    assert_eq!(store.login_lookup(&[key("k")], Some(&address), None).await.expect("lookup").throttle, None);
}

async fn a_session_gives_back_its_reserved_attempt(store: Arc<dyn Store>) {
    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let address = AddressKey::new("2001:db8::/64");
    let throttle = ThrottlePolicy::default();
    for _ in 0..3 {
        store.reserve_attempt(&address, 500, &throttle).await.expect("reserve");
    }
    // The check's place on a counter with one place left goes back too.
    let one = Counter { key: key("k"), limit: 1 };
    let (placed, _) = store.begin_check(std::slice::from_ref(&one), 500, 86_400, 530, "p", None).await.expect("place");
    assert!(placed[0].reserved);
    let session = Session { user_id: uid("u1"), client_id: cid("c1"), expires_at: 9999 };
    let reserved = Reservation { key: address.clone(), window_start: 500 };
    let event = audit_event(501, "+8615200000000");
    store
        .insert_session_audited(&digest("d1"), &session, 501, &event, Some(&reserved), Some("p"))
        .await
        .expect("session");
    let found = store.login_lookup(&[key("k")], Some(&address), None).await.expect("lookup");
    assert_eq!(found.throttle, Some(ThrottleState { window_start: 500, failures: 2 }));
    assert_eq!(newest(store.as_ref(), 5).await.len(), 1);
    let (again, _) = store.begin_check(&[one], 502, 86_400, 532, "q", None).await.expect("place");
    assert!(again[0].reserved, "the session's commit gave the place back");
}

async fn unlocking_an_account_clears_its_address_counters(store: Arc<dyn Store>) {
    let policy = policy(1, 600);
    for k in ["+8615200000000", "+8615200000000|192.0.2.7", "+8615200000000|2001:db8::/64", "+86152000000001"] {
        fail_once(store.as_ref(), k, 100, policy, counted(&failed(100))).await.expect("record");
    }
    store.unlock_account(&key("+8615200000000")).await.expect("unlock");
    for gone in ["+8615200000000", "+8615200000000|192.0.2.7", "+8615200000000|2001:db8::/64"] {
        assert!(store.failure_state(&key(gone)).await.expect("state").is_none(), "{gone}");
    }
    assert!(
        store.failure_state(&key("+86152000000001")).await.expect("state").is_some(),
        "another account stays locked"
    );
}

async fn the_purge_goes_in_batches_and_keeps_what_is_needed(store: Arc<dyn Store>) {
    for at in 0..25 {
        store.insert_audit(&audit_event(at, "+1")).await.expect("audit");
    }
    assert_eq!(store.purge(Purge::AuditBefore(20), 8).await.expect("purge"), 8, "one batch at most");
    assert_eq!(store.purge(Purge::AuditBefore(20), 8).await.expect("purge"), 8);
    assert_eq!(store.purge(Purge::AuditBefore(20), 8).await.expect("purge"), 4);
    assert_eq!(store.purge(Purge::AuditBefore(20), 8).await.expect("purge"), 0);
    let kept: Vec<i64> = newest(store.as_ref(), 100).await.iter().map(|e| e.event.at).rev().collect();
    assert_eq!(kept, (20..25).collect::<Vec<_>>(), "the oldest went first, the newer stay");

    store.insert_app(&app("c1")).await.expect("app");
    store.insert_user(&user("u1", "+8615200000000")).await.expect("user");
    let grant =
        |expires_at| StateGrant { user_id: uid("u1"), client_id: cid("c1"), flow: Flow::PasswordWarn, expires_at };
    store.insert_state_grant(&digest("old"), &grant(100)).await.expect("grant");
    store.insert_state_grant(&digest("new"), &grant(300)).await.expect("grant");
    assert_eq!(store.purge(Purge::StateGrants(200), 10).await.expect("purge"), 1);
    assert!(store.get_state_grant(&digest("new"), 200).await.expect("get").is_some());

    // A lock that holds is kept; one that ran out goes; a count is kept
    // until it is forgotten.
    fail_once(store.as_ref(), "locked", 100, policy(1, 600), counted(&failed(100))).await.expect("record");
    fail_once(store.as_ref(), "counting", 100, policy(5, 600), counted(&failed(100))).await.expect("record");
    let failures = |now| Purge::Failures { now, reset_seconds: 1000 };
    assert_eq!(store.purge(failures(699), 10).await.expect("purge"), 0);
    assert_eq!(store.purge(failures(700), 10).await.expect("purge"), 1);
    assert!(store.failure_state(&key("counting")).await.expect("state").is_some());
    assert_eq!(store.purge(failures(1100), 10).await.expect("purge"), 1);
    assert!(store.failure_state(&key("counting")).await.expect("state").is_none());
}

async fn one_holder_at_a_time_holds_a_lease(store: Arc<dyn Store>) {
    assert!(store.take_lease("purge", "a", 100, 200).await.expect("lease"));
    assert!(!store.take_lease("purge", "b", 150, 250).await.expect("lease"), "held by a");
    assert!(store.take_lease("purge", "a", 150, 250).await.expect("lease"), "a renews");
    assert!(!store.take_lease("purge", "b", 249, 349).await.expect("lease"), "still a's");
    assert!(store.take_lease("purge", "b", 250, 350).await.expect("lease"), "a's ran out");
    assert!(!store.take_lease("purge", "a", 300, 400).await.expect("lease"));
    assert!(store.take_lease("other", "a", 300, 400).await.expect("lease"), "leases are by name");
}

async fn the_console_reads_activity_locks_memberships_and_sessions(store: Arc<dyn Store>) {
    // Logins counted by hour and outcome from `since` on; other calls and
    // older hours left out.
    let at = |hour: i64, minute: i64| hour * 3600 + minute * 60;
    for (when, outcome) in [(at(10, 5), WRONG), (at(11, 1), WRONG), (at(11, 2), WRONG), (at(11, 3), LOCKED)] {
        store.insert_audit(&AuditEvent { outcome, ..audit_event(when, "+1") }).await.expect("audit");
    }
    store.insert_audit(&audit_event(at(11, 4), "+1")).await.expect("audit");
    store.insert_audit(&AuditEvent { action: Action::Refresh, ..audit_event(at(11, 5), "+1") }).await.expect("audit");
    store.insert_audit(&audit_event(at(9, 59), "+1")).await.expect("audit");
    let count =
        |hour: i64, outcome: Outcome, count: i64| ActivityCount { hour, outcome: outcome.as_str().to_owned(), count };
    let mut activity = store.login_activity(at(10, 0)).await.expect("activity");
    activity.sort_by(|a, b| (a.hour, &a.outcome).cmp(&(b.hour, &b.outcome)));
    let mut expected = vec![
        count(10, WRONG, 1),
        count(11, WRONG, 2),
        count(11, LOCKED, 1),
        count(11, Outcome::Status(Status::Success), 1),
    ];
    expected.sort_by(|a, b| (a.hour, &a.outcome).cmp(&(b.hour, &b.outcome)));
    assert_eq!(activity, expected);

    // The audit page's filters: outcome, time range, and paging by id.
    let page = |q: AuditQuery| {
        let store = Arc::clone(&store);
        async move { store.list_audit(&q).await.expect("list").iter().map(|e| e.event.at).collect::<Vec<_>>() }
    };
    let q = |outcome: Option<Outcome>, since: Option<i64>, until: Option<i64>| AuditQuery {
        outcome: outcome.map(|o| o.as_str().to_owned()),
        since,
        until,
        limit: 100,
        ..Default::default()
    };
    assert_eq!(page(q(Some(WRONG), None, None)).await, vec![at(11, 2), at(11, 1), at(10, 5)]);
    assert_eq!(page(q(None, Some(at(11, 2)), Some(at(11, 4)))).await, vec![at(11, 3), at(11, 2)], "since ≤ at < until");
    let first = store.list_audit(&AuditQuery { limit: 3, ..Default::default() }).await.expect("list");
    let next = AuditQuery { limit: 3, before_id: first.last().map(|e| e.id), ..Default::default() };
    assert_eq!(
        page(next).await,
        vec![at(11, 3), at(11, 2), at(11, 1)],
        "the page after the first three (newest first)"
    );

    // Accounts of registered users locked for everyone now, the latest
    // ending first; locks of unregistered numbers and per-address locks
    // are not listed.
    for (id, mobile) in [("u1", "+8615200000001"), ("u2", "+8615200000002"), ("u3", "+8615200000003")] {
        store.insert_user(&user(id, mobile)).await.expect("user");
    }
    fail_once(store.as_ref(), "+8615200000001", 100, policy(1, 600), counted(&failed(100))).await.expect("lock");
    fail_once(store.as_ref(), "+8615200000002", 200, policy(1, 600), counted(&failed(200))).await.expect("lock");
    fail_once(store.as_ref(), "+8615200000003", 100, policy(5, 600), counted(&failed(100))).await.expect("count");
    fail_once(store.as_ref(), "+8615299999999", 250, policy(1, 600), counted(&failed(250))).await.expect("stranger");
    fail_once(store.as_ref(), "+8615200000003|10.0.0.1", 250, policy(1, 600), counted(&failed(250)))
        .await
        .expect("pair");
    let locked = |now: i64, limit: u32| {
        let store = Arc::clone(&store);
        async move {
            let locked = store.locked_users(now, limit).await.expect("locked");
            locked.into_iter().map(|(user, until)| (user.id.to_string(), until)).collect::<Vec<_>>()
        }
    };
    assert_eq!(locked(300, 10).await, vec![("u2".to_owned(), 800), ("u1".to_owned(), 700)]);
    assert_eq!(locked(300, 1).await, vec![("u2".to_owned(), 800)], "the limit keeps the latest");
    assert_eq!(locked(750, 10).await, vec![("u2".to_owned(), 800)], "a lock that ran out is gone");

    // A user's apps, and an app's members by mobile.
    store.insert_app(&app("c2")).await.expect("app");
    store.insert_app(&app("c1")).await.expect("app");
    assert!(store.user_apps(&uid("u1")).await.expect("apps").is_empty());
    store.add_member(&cid("c2"), &uid("u1")).await.expect("member");
    store.add_member(&cid("c1"), &uid("u1")).await.expect("member");
    store.add_member(&cid("c1"), &uid("u3")).await.expect("member");
    let mut apps = store.user_apps(&uid("u1")).await.expect("apps");
    apps.sort();
    assert_eq!(apps, vec![cid("c1"), cid("c2")]);
    let members = |limit: u32| {
        let store = Arc::clone(&store);
        async move {
            let members = store.app_members(&cid("c1"), limit).await.expect("members");
            members.into_iter().map(|u| u.id.to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(members(10).await, vec!["u1", "u3"]);
    assert_eq!(members(1).await, vec!["u1"]);
    assert!(store.app_members(&cid("c2"), 10).await.expect("members").iter().all(|u| u.id == uid("u1")));

    // Console sessions: alive until they expire or are ended, with the
    // admin digest they were opened with; the purge takes expired ones only.
    store.insert_console_session(&digest("s1"), "admin-1", 1000).await.expect("session");
    store.insert_console_session(&digest("s2"), "admin-1", 2000).await.expect("session");
    assert_eq!(store.console_session(&digest("s1"), 999).await.expect("get"), Some((1000, "admin-1".to_owned())));
    assert_eq!(store.console_session(&digest("s1"), 1000).await.expect("get"), None, "expired");
    assert_eq!(store.console_session(&digest("nope"), 0).await.expect("get"), None);
    assert_eq!(store.purge(Purge::ConsoleSessions(1500), 10).await.expect("purge"), 1);
    assert!(store.console_session(&digest("s2"), 1500).await.expect("get").is_some());
    store.delete_console_session(&digest("s2")).await.expect("end");
    assert_eq!(store.console_session(&digest("s2"), 1500).await.expect("get"), None);
}
