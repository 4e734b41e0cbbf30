//! The OpenID Connect grants on both backends: redemptions counted
//! atomically, families revoked together, a user's grants ended with a
//! password change, and a page login's one commit.

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

use std::sync::Arc;

use ciam_core::mobile::Mobile;
use ciam_core::model::{
    AddressKey, App, AppAccess, ClientId, Counter, LockKey, Reservation, ThrottleState, TokenDigest, User, UserId,
};
use ciam_core::policy::ThrottlePolicy;
use ciam_core::store::{Grant, GrantKind, Store};

mod common;
use common::{on_both_stores, with_store};

on_both_stores!(
    a_redemption_is_counted_once_however_many_race,
    a_family_and_a_users_grants_go_together,
    a_page_login_commits_its_grants_and_gives_back_its_holds,
);

/// An app and a user to hang grants on.
async fn app_and_user(store: &dyn Store) {
    let app = App {
        client_id: ClientId::new("c1"),
        name: "Web".into(),
        enabled: true,
        password_expiry_check: false,
        access: AppAccess::All,
        session_ttl: 3600,
        id_token_ttl: 300,
        id_token_alg: Default::default(),
        created_at: 100,
        oidc: Default::default(),
        signup: Default::default(),
    };
    store.insert_app(&app).await.expect("app");
    let user = User {
        id: UserId::new("u1"),
        mobile: Mobile::from_stored("+8615200000000".into()),
        user_name: None,
        name: None,
        email: None,
        disabled: false,
        password_hash: "hash".into(),
        password_changed_at: 100,
        created_at: 100,
        updated_at: 100,
    };
    store.insert_user(&user).await.expect("user");
}

fn grant(digest: &str, kind: GrantKind, family: Option<&str>) -> Grant {
    Grant {
        digest: TokenDigest::new(digest),
        kind,
        client_id: (kind != GrantKind::Browser).then(|| ClientId::new("c1")),
        user_id: (kind != GrantKind::Request).then(|| UserId::new("u1")),
        family: family.map(str::to_owned),
        body: "{}".into(),
        uses: 0,
        expires_at: 1_000,
    }
}

async fn a_redemption_is_counted_once_however_many_race(store: Arc<dyn Store>) {
    app_and_user(store.as_ref()).await;
    store.insert_grants(&[grant("code", GrantKind::Code, None)]).await.expect("insert");
    let racers = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.use_grant(&TokenDigest::new("code"), GrantKind::Code).await })
    });
    let mut uses: Vec<i64> = Vec::new();
    for racer in racers {
        uses.push(racer.await.expect("join").expect("use").expect("found").uses);
    }
    uses.sort_unstable();
    assert_eq!(uses, (1..=8).collect::<Vec<_>>(), "each redemption sees its own count");
    assert!(store.use_grant(&TokenDigest::new("code"), GrantKind::Access).await.expect("use").is_none(), "kind");
    let kept = store.get_grant(&TokenDigest::new("code"), GrantKind::Code, 999).await.expect("get");
    assert_eq!(kept.map(|g| g.uses), Some(8));
    assert!(store.get_grant(&TokenDigest::new("code"), GrantKind::Code, 1_000).await.expect("get").is_none(), "dead");
}

async fn a_family_and_a_users_grants_go_together(store: Arc<dyn Store>) {
    app_and_user(store.as_ref()).await;
    let grants = [
        grant("a1", GrantKind::Access, Some("f1")),
        grant("r1", GrantKind::Refresh, Some("f1")),
        grant("a2", GrantKind::Access, Some("f2")),
        grant("b1", GrantKind::Browser, None),
    ];
    store.insert_grants(&grants).await.expect("insert");
    assert_eq!(store.revoke_family("f1").await.expect("revoke"), 2);
    let alive = |d: &'static str, kind| {
        let store = Arc::clone(&store);
        async move { store.get_grant(&TokenDigest::new(d), kind, 500).await.expect("get").is_some() }
    };
    assert!(!alive("r1", GrantKind::Refresh).await && alive("a2", GrantKind::Access).await);
    store.set_password(&UserId::new("u1"), "new-hash", 200, 0).await.expect("password");
    assert!(!alive("a2", GrantKind::Access).await && !alive("b1", GrantKind::Browser).await, "a new password ends all");
}

async fn a_page_login_commits_its_grants_and_gives_back_its_holds(store: Arc<dyn Store>) {
    app_and_user(store.as_ref()).await;
    store
        .insert_grants(&[grant("req", GrantKind::Request, None), grant("old", GrantKind::Browser, None)])
        .await
        .expect("x");
    let address = AddressKey::new("192.0.2.7");
    let throttle = ThrottlePolicy::default();
    store.reserve_attempt(&address, 500, &throttle).await.expect("reserve");
    let one = Counter { key: LockKey::new("+8615200000000"), limit: 1 };
    let (placed, _) = store.begin_check(std::slice::from_ref(&one), 500, 86_400, 530, "p", None).await.expect("place");
    assert!(placed[0].reserved);
    let spent = [(TokenDigest::new("req"), GrantKind::Request), (TokenDigest::new("old"), GrantKind::Browser)];
    let reserved = Reservation { key: address.clone(), window_start: 500 };
    let made = [grant("new", GrantKind::Browser, None), grant("code", GrantKind::Code, None)];
    store.commit_sign_in(&made, &spent, Some(&reserved), Some("p")).await.expect("commit");
    let get = |d: &'static str, kind| {
        let store = Arc::clone(&store);
        async move { store.get_grant(&TokenDigest::new(d), kind, 501).await.expect("get").is_some() }
    };
    assert!(get("new", GrantKind::Browser).await && get("code", GrantKind::Code).await);
    assert!(!get("req", GrantKind::Request).await && !get("old", GrantKind::Browser).await);
    let found = store.login_lookup(std::slice::from_ref(&one.key), Some(&address), None).await.expect("lookup");
    assert_eq!(found.throttle, Some(ThrottleState { window_start: 500, failures: 0 }), "the attempt went back");
    let (again, _) = store.begin_check(&[one], 502, 86_400, 532, "q", None).await.expect("place");
    assert!(again[0].reserved, "the place went back");
}
