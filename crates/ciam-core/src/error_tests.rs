//! The message catalogue's own checks.

use super::*;
use std::collections::HashSet;

#[test]
fn every_code_has_both_languages_and_a_unique_id() {
    let mut seen = HashSet::new();
    for code in ErrorCode::ALL {
        assert!(seen.insert(code.as_str()), "duplicate code {code}");
        let en = code.template(Lang::En);
        let zh = code.template(Lang::Zh);
        assert!(!en.trim().is_empty(), "{code} lacks English");
        assert!(!zh.trim().is_empty(), "{code} lacks Chinese");
        assert_ne!(en, zh, "{code} has the same text in both languages");
        let placeholders = |s: &str| (0..4).filter(|i| s.contains(&format!("{{{i}}}"))).count();
        assert_eq!(placeholders(en), placeholders(zh), "{code} placeholders differ");
    }
}

#[test]
fn the_readme_documents_every_code_in_both_languages() {
    let readme = include_str!("../../../README.md");
    for code in ErrorCode::ALL {
        let row = format!(
            "| `{}` | {} | {} | {} |",
            code.as_str(),
            code.http_status(),
            code.template(Lang::En),
            code.template(Lang::Zh)
        );
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}

#[test]
fn seed_messages_are_verbatim() {
    let locked = ErrorCode::AccountLocked;
    assert_eq!(
        locked.message(Lang::Zh, &["29".into(), "59".into()]),
        "由于多次登录失败,用户已被锁定。 它将在 29 分钟和 59 秒内解锁"
    );
    assert_eq!(
        ErrorCode::InvalidCredentials.message(Lang::En, &["9".into()]),
        "Invalid account or password. Remaining times: 9"
    );
    assert_eq!(ErrorCode::InvalidCredentials.message(Lang::Zh, &["9".into()]), "无效的账号或密码。 剩余次数:9");
    assert_eq!(ErrorCode::SystemBusy.http_status(), 500);
    assert_eq!(ErrorCode::AppNotRegistered.template(Lang::Zh), "应用未注册,请先注册应用");
}

#[test]
fn language_follows_x_l_prefix() {
    assert_eq!(Lang::from_header(Some("zh")), Lang::Zh);
    assert_eq!(Lang::from_header(Some("zh-CN")), Lang::Zh);
    assert_eq!(Lang::from_header(Some("ZH_tw")), Lang::Zh);
    assert_eq!(Lang::from_header(Some("en")), Lang::En);
    assert_eq!(Lang::from_header(Some("z")), Lang::En);
    assert_eq!(Lang::from_header(Some("中文")), Lang::En);
    assert_eq!(Lang::from_header(None), Lang::En);
}
