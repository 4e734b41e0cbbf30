//! The configuration's own checks.

use super::*;

#[test]
fn every_setting_reads_back_its_default() {
    let mut config = Config { metrics_listen: "changed".into(), hash_queue: 1, ..Config::default() };
    for (name, text) in Config::defaults() {
        config.set(name, &text).unwrap_or_else(|e| panic!("{name} = {text:?}: {e}"));
    }
    assert_eq!(format!("{config:?}"), format!("{:?}", Config::default()));
    assert_eq!(SETTINGS.len(), Config::defaults().len());
}

#[test]
fn a_file_that_does_not_parse_is_refused_without_quoting_it() {
    let folder = std::env::temp_dir().join(format!("ciam-config-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap_or_else(|e| panic!("{e}"));
    let file = folder.join("ciam.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:1\"\nadmin-token = \"a-secret-admin-token-0123456789-abcdef\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let why = Config::load(Some(&file), &[]).map(drop).expect_err("refused").0;
    let _ = std::fs::remove_dir_all(&folder);
    assert!(why.contains("line 2:") && why.contains("admin-token"), "{why}");
    assert!(!why.contains("a-secret"), "the file's text is not quoted: {why}");
}

#[test]
fn secrets_never_print() {
    let mut config = Config::default();
    config.set("admin_token", "a-secret-admin-token-0123456789-abcdef").unwrap_or_else(|e| panic!("{e}"));
    assert!(!format!("{config:?}").contains("a-secret"), "{config:?}");
    let shown: Vec<String> = Config::defaults().into_iter().map(|(_, text)| text).collect();
    assert!(shown.iter().all(|text| !text.contains("a-secret")));
    let hidden: Vec<&str> = SETTINGS.iter().filter(|s| s.secret).map(|s| s.name).collect();
    let secrets = ["database_url", "admin_token", "key_encryption_key", "sms_webhook_secret", "captcha_secret"];
    assert_eq!(hidden, secrets, "values --help never shows");
    assert_eq!(config.admin_token.as_ref().map(Secret::expose), Some("a-secret-admin-token-0123456789-abcdef"));
}

#[test]
fn settings_are_parsed_and_bad_values_named() {
    let mut config = Config::default();
    config.set("hash_workers", " 3 ").unwrap_or_else(|e| panic!("{e}"));
    config.set("log_format", "JSON").unwrap_or_else(|e| panic!("{e}"));
    config.set("metrics_listen", "").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((config.hash_workers, config.log_format), (Some(3), LogFormat::Json));
    assert!(config.metrics_listen.is_empty(), "empty turns metrics off");
    assert!(config.set("hash_queue", "many").is_err_and(|e| e.0.contains("hash_queue")));
    assert!(config.set("log_format", "xml").is_err());
    assert!(config.set("no_such_setting", "1").is_err());
    let flags = Config::load(None, &[("listen", "127.0.0.1:9999".into())]).map(|c| c.listen);
    assert_eq!(flags.ok().as_deref(), Some("127.0.0.1:9999"));
}

#[test]
fn an_issuer_is_an_origin_as_browsers_send_it() {
    let check = |issuer: &str| Config { issuer: Some(issuer.into()), ..Config::default() }.check_issuer();
    assert!(check("https://login.example.com").is_ok());
    assert!(check("http://127.0.0.1:8080").is_ok());
    let told = |issuer: &str| check(issuer).err().map(|e| e.0).unwrap_or_default();
    assert!(told("https://login.example.com/").contains("\"https://login.example.com\""));
    assert!(told("https://Login.example.com:443").contains("\"https://login.example.com\""));
    assert!(told("https://login.example.com/ciam").contains("no path"));
    assert!(told("ftp://login.example.com").contains("http or https"));
    assert!(told("login.example.com").contains("http or https"));
}
