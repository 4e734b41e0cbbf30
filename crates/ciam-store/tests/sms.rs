//! The SMS codes and windows on both backends: a window never holds more
//! than its maximum however many count at once, a refused send leaves
//! nothing counted, a code's comparisons are counted before they happen and
//! it is spent once, and retention clears what has run out.

#![expect(clippy::expect_used, reason = "a test fails loudly on the first broken step")]

use std::sync::Arc;

use ciam_core::mobile::Mobile;
use ciam_core::store::sms::{CodeCheck, NewCode, Window};
use ciam_core::store::{Purge, Store};

mod common;
use common::{on_both_stores, with_store};

on_both_stores!(
    a_window_holds_its_maximum_however_many_count_at_once,
    a_refused_take_leaves_nothing_counted,
    a_code_is_compared_a_few_times_and_spent_once,
    retention_clears_codes_and_windows_that_ran_out,
);

fn window(key: &str, seconds: i64, max: u32) -> Window {
    Window { key: key.into(), window_seconds: seconds, max }
}

fn mobile() -> Mobile {
    Mobile::from_stored("+8615200000000".into())
}

async fn a_window_holds_its_maximum_however_many_count_at_once(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.take_windows(&[window("all", 3600, 7)], 1000).await.expect("take") })
        })
        .collect();
    let mut taken = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(windows) => {
                assert_eq!(windows[0].ends_at, 4600);
                taken += 1;
            }
            Err((at, retry_after)) => assert_eq!((at, retry_after), (0, 3600)),
        }
    }
    assert_eq!(taken, 7);
    // A window that ended starts again at one.
    assert!(store.take_windows(&[window("all", 3600, 7)], 4600).await.expect("take").is_ok());
}

async fn a_refused_take_leaves_nothing_counted(store: Arc<dyn Store>) {
    let (ip, day) = (window("ip", 3600, 5), window("day", 86_400, 1));
    assert!(store.take_windows(&[ip.clone(), day.clone()], 10).await.expect("take").is_ok());
    for _ in 0..10 {
        let refused = store.take_windows(&[ip.clone(), day.clone()], 20).await.expect("take");
        assert_eq!(refused, Err((1, 86_400 - 10)), "the day refuses, with the seconds it has left");
    }
    // The address's hour counted one send only: four more fit.
    for n in 0..4 {
        assert!(store.take_windows(std::slice::from_ref(&ip), 30).await.expect("take").is_ok(), "send {n}");
    }
    assert!(store.take_windows(&[ip], 30).await.expect("take").is_err());
}

async fn a_code_is_compared_a_few_times_and_spent_once(store: Arc<dyn Store>) {
    let m = mobile();
    let code = NewCode { mobile: &m, kind: "LOGIN_SMS", digest: "d1", expires_at: 400 };
    store.put_code(&code).await.expect("code");
    let day = window("checks:+8615200000000", 86_400, 10);
    for _ in 0..3 {
        let check = store.check_code(&m, "LOGIN_SMS", &day, 100, 3).await.expect("check");
        assert!(matches!(check, CodeCheck::Live { ref digest, .. } if digest == "d1"), "{check:?}");
    }
    let used_up = store.check_code(&m, "LOGIN_SMS", &day, 100, 3).await.expect("check");
    assert!(matches!(used_up, CodeCheck::NoCode { .. }), "three comparisons, no fourth: {used_up:?}");
    // A new code starts with its own comparisons; another purpose has none.
    store.put_code(&NewCode { digest: "d2", ..code.clone() }).await.expect("code");
    let CodeCheck::Live { digest, day: taken } = store.check_code(&m, "LOGIN_SMS", &day, 100, 3).await.expect("check")
    else {
        panic!("no live code");
    };
    assert_eq!(digest, "d2");
    let other = store.check_code(&m, "FORGET_PWD_SMS", &day, 100, 3).await.expect("check");
    assert!(matches!(other, CodeCheck::NoCode { .. }));
    assert!(!store.spend_code(&m, "LOGIN_SMS", "d1", &taken).await.expect("spend"), "not the live code");
    assert!(store.spend_code(&m, "LOGIN_SMS", "d2", &taken).await.expect("spend"));
    assert!(!store.spend_code(&m, "LOGIN_SMS", "d2", &taken).await.expect("spend"), "spent once");
    // Six entries so far, the right one given back: five on the day.
    let small_day = window("checks:+8615200000000", 86_400, 5);
    let check = store.check_code(&m, "LOGIN_SMS", &small_day, 100, 3).await.expect("check");
    assert_eq!(check, CodeCheck::NoneLeft, "the day's wrong entries are used up");
    // An expired code is no code.
    store.put_code(&NewCode { digest: "d3", ..code }).await.expect("code");
    let late = store.check_code(&m, "LOGIN_SMS", &day, 400, 3).await.expect("check");
    assert!(matches!(late, CodeCheck::NoCode { .. }));
}

async fn retention_clears_codes_and_windows_that_ran_out(store: Arc<dyn Store>) {
    let m = mobile();
    store.put_code(&NewCode { mobile: &m, kind: "LOGIN_SMS", digest: "a", expires_at: 100 }).await.expect("code");
    store.put_code(&NewCode { mobile: &m, kind: "REGISTER_SMS", digest: "b", expires_at: 900 }).await.expect("code");
    store.take_windows(&[window("short", 60, 5), window("long", 3600, 5)], 0).await.expect("take").expect("taken");
    assert_eq!(store.purge(Purge::SmsCodes(500), 100).await.expect("purge"), 1);
    assert_eq!(store.purge(Purge::SmsWindows(500), 100).await.expect("purge"), 1);
    let day = window("checks", 86_400, 10);
    let live = store.check_code(&m, "REGISTER_SMS", &day, 500, 3).await.expect("check");
    assert!(matches!(live, CodeCheck::Live { .. }), "the live code stays");
}
