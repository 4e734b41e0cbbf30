//! The language a page speaks: the one the visitor chose (a cookie), else
//! the browser's first (`Accept-Language`, Chinese for `zh…`), else
//! English.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use ciam_core::Lang;

/// A cookie's value.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The language chosen in the cookie `chosen`, else the browser's.
pub(crate) fn lang_of(headers: &HeaderMap, chosen: &str) -> Lang {
    match cookie(headers, chosen) {
        Some("zh") => Lang::Zh,
        Some("en") => Lang::En,
        _ => {
            let accepted = headers.get("accept-language").and_then(|v| v.to_str().ok()).unwrap_or_default();
            Lang::from_header(accepted.split(',').next())
        }
    }
}

/// The code of the language a page offers as its other one.
pub(crate) fn other(lang: Lang) -> &'static str {
    if lang == Lang::Zh { "en" } else { "zh" }
}

/// The `lang` attribute of a page in `lang`.
pub(crate) fn html_lang(lang: Lang) -> &'static str {
    if lang == Lang::Zh { "zh-CN" } else { "en" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_language_wins_over_the_browsers() {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", "zh-CN,zh;q=0.9".parse().expect("header"));
        assert_eq!(lang_of(&headers, "l"), Lang::Zh);
        headers.insert(COOKIE, "a=1; l=en".parse().expect("header"));
        assert_eq!(lang_of(&headers, "l"), Lang::En);
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(lang_of(&HeaderMap::new(), "l"), Lang::En);
        assert_eq!((other(Lang::Zh), other(Lang::En)), ("en", "zh"));
    }
}
