//! How a setting's value is read from text (an environment variable, a
//! flag) and shown (`--help`), and the type of the secret ones.

use std::path::PathBuf;

use serde::Deserialize;

use super::LogFormat;

/// A setting's value as typed (environment, flag) and as shown (`--help`).
pub trait SettingValue: Sized {
    /// The value of `text` (trimmed; empty only where empty means none).
    fn parse(text: &str) -> Result<Self, String>;
    /// The value as `--help` shows it.
    fn show(&self) -> String;
}

macro_rules! parsed_with_from_str {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            fn parse(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e: <$ty as std::str::FromStr>::Err| e.to_string())
            }

            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

parsed_with_from_str!(u32, u64, usize, i64, String);

impl SettingValue for PathBuf {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }

    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl<T: SettingValue> SettingValue for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }

    fn show(&self) -> String {
        self.as_ref().map(T::show).unwrap_or_default()
    }
}

impl SettingValue for LogFormat {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|()| "not text or json".to_owned())
    }

    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text".into(),
            LogFormat::Json => "json".into(),
        }
    }
}

/// A secret setting (the admin token, the key encryption key): its value
/// never prints, in `Debug`, in `--help` or in an error.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl SettingValue for Secret {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(Secret(text.to_owned()))
    }

    fn show(&self) -> String {
        "***".into()
    }
}
