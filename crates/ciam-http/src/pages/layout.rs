//! The HTML document around a page, the assets built into the binary
//! (stylesheet, script, icon: nothing is fetched from anywhere else), and
//! the redirects a page answers with.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use ciam_core::Lang;
use maud::{DOCTYPE, Markup, html};

/// The stylesheet of every page.
pub(crate) const STYLESHEET_PATH: &str = "/console/assets/console.css";
/// The one script (copy buttons, and the app URL of a page showing a client
/// secret; every page works without it).
pub(crate) const SCRIPT_PATH: &str = "/console/assets/console.js";
/// The icon of every page; `/favicon.ico` answers it too, for agents that
/// ask there without reading the page.
pub(crate) const FAVICON_PATH: &str = "/console/assets/favicon.svg";

const STYLESHEET: &str = include_str!("../../assets/console.css");
const SCRIPT: &str = include_str!("../../assets/console.js");
const FAVICON: &str = include_str!("../../assets/favicon.svg");

/// The HTML document around `content`, in `lang`.
pub(crate) fn document(lang: Lang, title: &str, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang=(super::lang::html_lang(lang)) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="icon" type="image/svg+xml" href=(FAVICON_PATH);
                link rel="stylesheet" href=(STYLESHEET_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body { (content) }
        }
    };
    Html(page.into_string())
}

/// A redirect after a post; to `fallback` when `to` cannot be a header.
pub(crate) fn see_other(to: &str, fallback: &'static str) -> Response {
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static(fallback));
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

/// A redirect to `to` that sets `cookie` (made by the caller, always a
/// valid header).
pub(crate) fn redirect_setting(to: &str, cookie: &str, fallback: &'static str) -> Response {
    let mut response = see_other(to, fallback);
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// `GET …/console.css`.
pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

/// `GET …/console.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET …/favicon.svg` and `/favicon.ico`: without an icon, every page
/// load logs a 404 in the browser's console.
pub(crate) async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON)
}

fn asset(kind: &'static str, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}
