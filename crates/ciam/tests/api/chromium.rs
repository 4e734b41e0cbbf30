//! Headless Chromium through WebDriver (Debian's `chromium` and
//! `chromium-driver`), for the tests that drive pages as a person does:
//! the console (console.rs) and the hosted login page (oidc_browser.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use openidconnect::url::{ParseError, Url};
use serde_json::{Value, json};

use crate::helpers::free_port;

/// chromedriver and the browser it drives, stopped on drop.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Ends the browser session (chromedriver then quits Chromium) and
    /// stops chromedriver.
    pub(crate) async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Whatever happened (a failed test ends without [`Browser::close`]),
    /// no Chromium of this test's profile is left running.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        kill_chromium_of(&self.profile);
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills the processes whose command line names `profile` (the Chromium
/// of one test: its `--user-data-dir`).
fn kill_chromium_of(profile: &Path) {
    let needle = format!("--user-data-dir={}", profile.display());
    let Ok(processes) = std::fs::read_dir("/proc") else { return };
    for process in processes.flatten() {
        let Ok(cmdline) = std::fs::read(process.path().join("cmdline")) else { continue };
        if cmdline.split(|b| *b == 0).any(|arg| arg == needle.as_bytes()) {
            let pid = process.file_name().to_string_lossy().into_owned();
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// The first of `names` that is a file, on PATH or as a path.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path).map(|dir| dir.join(name)).chain([PathBuf::from(name)]).find(|p| p.is_file())
    })
}

/// A fresh Chromium (its own profile, 1280 px wide, in English) driven by
/// a fresh chromedriver; its console messages are kept for
/// [`browser_log`].
pub(crate) async fn browser() -> Browser {
    let driver_path = program(&["chromedriver", "/usr/lib/chromium/chromedriver"])
        .expect("chromedriver is not installed: apt-get install chromium chromium-driver (.ci/run installs them)");
    let chromium = program(&["chromium", "chromium-browser", "google-chrome"])
        .expect("chromium is not installed: apt-get install chromium chromium-driver (.ci/run installs them)");
    let port = free_port();
    let driver = Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = std::env::temp_dir().join(format!("ciam-chromium-{}", uuid::Uuid::new_v4().simple()));
    // No traffic beyond 127.0.0.1: the background services are off.
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-features=Translate,MediaRouter", "--lang=en-US", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let Value::Object(capabilities) = capabilities else { unreachable!("an object") };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a browser session");
    Browser { client, driver, profile }
}

/// chromedriver's log command: the browser's console messages since the
/// last call (CSP violations among them).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// The browser's console messages since the last call, one a line.
pub(crate) async fn browser_log(browser: &Client) -> Vec<String> {
    match browser.issue_cmd(BrowserLog).await {
        Ok(Value::Array(entries)) => entries
            .iter()
            .map(|e| format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("?")))
            .collect(),
        Ok(other) => vec![format!("an odd log: {other}")],
        Err(e) => vec![format!("no log: {e}")],
    }
}

/// Resizes the window to `width` × `height` and lets the page settle.
pub(crate) async fn resize(browser: &Client, width: u32, height: u32) {
    browser.set_window_size(width, height).await.expect("resize");
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Saves what the browser shows as `folder/file`; without a folder, still
/// takes it (so the step is exercised) and keeps nothing.
pub(crate) async fn save_screenshot(browser: &Client, folder: Option<&Path>, file: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    if let Some(folder) = folder {
        std::fs::create_dir_all(folder).expect("screenshot folder");
        std::fs::write(folder.join(file), png).expect("save screenshot");
    }
}

/// The element `css` once the page shows it (a click's navigation may
/// still be under way); on failure, the page the browser has.
pub(crate) async fn find(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser.wait().at_most(Duration::from_secs(5)).for_element(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => {
            let url = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = browser.source().await.unwrap_or_default();
            let log = browser_log(browser).await.join("\n");
            panic!("{css}: {e}\nat {url}:\n{source}\nbrowser log:\n{log}")
        }
    }
}

pub(crate) async fn text_of(browser: &Client, css: &str) -> String {
    find(browser, css).await.text().await.expect("text")
}

pub(crate) async fn fill(browser: &Client, css: &str, value: &str) {
    let input = find(browser, css).await;
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

/// Clicks what leads to another page and waits until that page is there
/// (the old page's root is gone).
pub(crate) async fn click(browser: &Client, css: &str) {
    let old = browser.find(Locator::Css("html")).await.expect("a page");
    find(browser, css).await.click().await.expect("click");
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        if Instant::now() >= deadline {
            let log = browser_log(browser).await.join("\n");
            panic!("clicking {css} led nowhere; browser log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    browser.wait().at_most(Duration::from_secs(10)).for_element(Locator::Css("body")).await.expect("the new page");
}

pub(crate) async fn path(browser: &Client) -> String {
    browser.current_url().await.expect("url").path().to_owned()
}
