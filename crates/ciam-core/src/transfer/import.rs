//! Users in and out in bulk (docs/api.md §10): the files other systems export,
//! read into [`UserInput`]s with their hashes, and checked and stored a
//! batch at a time by [`Ciam::import_users`]. Nothing here hashes: an
//! import runs at the speed of the database, not of argon2.

use serde::Deserialize;
use serde_json::Value;

use crate::admin::{UserInput, check_user_id};
use crate::error::CiamError;
use crate::model::{User, UserId};
use crate::service::Ciam;
use crate::token::new_user_id;

/// One user as a file brings it: the admin API's fields, with an id to
/// keep (the old system's subject) and the hash as exported.
#[derive(Debug, Clone, Default)]
pub struct Incoming {
    /// The id to keep, when the file has one.
    pub id: Option<String>,
    /// The profile, mobile and flags.
    pub input: UserInput,
    /// The hash as exported (see [`crate::hashes::from_export`]).
    pub password_hash: String,
}

/// What became of one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Users stored.
    pub imported: usize,
    /// Positions in the batch (and their mobiles, E.164) of users whose
    /// mobile or id is there already.
    pub skipped: Vec<(usize, String)>,
    /// Positions in the batch of users refused, and why.
    pub rejected: Vec<(usize, String)>,
}

/// A batch checked and not yet stored (see [`Ciam::check_users`]).
#[derive(Debug, Default)]
pub struct CheckedBatch {
    users: Vec<(usize, User)>,
    report: BatchReport,
}

/// A line of JSON Lines in the admin API's user object: `mobile`,
/// `password_hash`, and optionally `id`, `user_name`, `name`, `email`,
/// `disabled`, `password_changed_at` (RFC 3339) — what `ciam user export`
/// writes.
pub fn from_ciam_line(line: &str) -> Result<Incoming, String> {
    #[derive(Deserialize)]
    struct Line {
        id: Option<String>,
        mobile: Option<String>,
        password_hash: Option<String>,
        user_name: Option<String>,
        name: Option<String>,
        email: Option<String>,
        #[serde(default)]
        disabled: bool,
        password_changed_at: Option<String>,
        // What an export also writes, and an import makes anew.
        #[serde(default, rename = "created_at")]
        _created_at: Option<String>,
        #[serde(default, rename = "updated_at")]
        _updated_at: Option<String>,
    }
    let line: Line = serde_json::from_str(line).map_err(|e| format!("not a user object: {}", json_why(&e)))?;
    let password_changed_at = match line.password_changed_at.as_deref() {
        Some(text) => Some(crate::clock::from_rfc3339(text).ok_or("password_changed_at: not an RFC 3339 time")?),
        None => None,
    };
    Ok(Incoming {
        id: line.id,
        input: UserInput {
            mobile: line.mobile,
            user_name: Some(line.user_name),
            name: Some(line.name),
            email: Some(line.email),
            disabled: Some(line.disabled),
            password_changed_at,
            ..UserInput::default()
        },
        password_hash: line.password_hash.ok_or("password_hash: missing")?,
    })
}

/// serde_json's reason for refusing one line, placed by column only (its
/// own "at line 1" would contradict the file's line number beside it).
fn json_why(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let reason = text.rsplit_once(" at line ").map_or(text.as_str(), |(reason, _)| reason);
    match e.column() {
        0 => reason.to_owned(),
        column => format!("{reason} at column {column}"),
    }
}

/// A line of an Auth0 user export (JSON Lines): `phone_number`, and the
/// hash as `passwordHash` (the export Auth0 support hands over) or as
/// `custom_password_hash.hash.value` (Auth0's bulk-import shape); `user_id`
/// is kept as the id, `blocked` users are imported disabled.
pub fn from_auth0_line(line: &str) -> Result<Incoming, String> {
    let user: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {}", json_why(&e)))?;
    let text = |field: &str| user[field].as_str().map(str::to_owned);
    let hash = text("passwordHash")
        .or_else(|| user["custom_password_hash"]["hash"]["value"].as_str().map(str::to_owned))
        .ok_or("no passwordHash or custom_password_hash")?;
    let updated = user["last_password_reset"].as_str().or(user["created_at"].as_str());
    Ok(Incoming {
        id: text("user_id").or_else(|| user["_id"]["$oid"].as_str().map(|oid| format!("auth0|{oid}"))),
        input: UserInput {
            mobile: Some(text("phone_number").ok_or("no phone_number")?),
            user_name: Some(text("username")),
            name: Some(text("name")),
            email: Some(text("email")),
            disabled: Some(user["blocked"].as_bool().unwrap_or(false)),
            password_changed_at: updated.and_then(crate::clock::from_rfc3339),
            ..UserInput::default()
        },
        password_hash: hash,
    })
}

/// Where a Keycloak user's mobile is: an attribute, or the username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MobileFrom {
    /// `attributes.<name>[0]` (Keycloak's user profile keeps a phone
    /// number there, as `phoneNumber` by convention).
    Attribute(String),
    /// The username.
    Username,
}

impl std::str::FromStr for MobileFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("attribute", name)) if !name.is_empty() => Ok(MobileFrom::Attribute(name.to_owned())),
            None if s == "username" => Ok(MobileFrom::Username),
            _ => Err(format!("{s:?}: use attribute:NAME or username")),
        }
    }
}

/// The users of a Keycloak realm export (`{"realm", "users": [...]}`),
/// each with its index in `users` or why it cannot be read. A user's
/// password is its credential of type `password`; its `id` is kept.
pub fn from_keycloak(realm: &Value, mobile_from: &MobileFrom) -> Result<Vec<Result<Incoming, String>>, String> {
    let users = realm["users"].as_array().ok_or("not a Keycloak realm export: no users array")?;
    Ok(users.iter().map(|user| keycloak_user(user, mobile_from)).collect())
}

fn keycloak_user(user: &Value, mobile_from: &MobileFrom) -> Result<Incoming, String> {
    let text = |field: &str| user[field].as_str().map(str::to_owned);
    let mobile = match mobile_from {
        MobileFrom::Attribute(name) => {
            user["attributes"][name][0].as_str().map(str::to_owned).ok_or_else(|| format!("no attribute {name}"))?
        }
        MobileFrom::Username => text("username").ok_or("no username")?,
    };
    let credential = user["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "password"))
        .ok_or("no password credential")?;
    let hash = crate::hashes::from_keycloak(credential).map_err(|e| e.to_string())?;
    let name = [text("firstName"), text("lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    Ok(Incoming {
        id: text("id"),
        input: UserInput {
            mobile: Some(mobile),
            user_name: Some(text("username")),
            name: Some((!name.is_empty()).then_some(name)),
            email: Some(text("email")),
            disabled: Some(!user["enabled"].as_bool().unwrap_or(true)),
            password_changed_at: credential["createdDate"].as_i64().map(|ms| ms / 1000),
            ..UserInput::default()
        },
        password_hash: hash,
    })
}

impl Ciam {
    /// Checks and stores a batch of users in one write: each is refused
    /// (with why) or becomes a user; a user whose mobile or id is already
    /// there — in the database or earlier in the batch — is skipped, so an
    /// interrupted import can be run again.
    pub async fn import_users(&self, batch: Vec<Incoming>) -> Result<BatchReport, CiamError> {
        let checked = self.check_users(batch);
        self.store_users(checked).await
    }

    /// The first half of [`Ciam::import_users`], all CPU: a caller may
    /// check the next batch while the last one is stored.
    pub fn check_users(&self, batch: Vec<Incoming>) -> CheckedBatch {
        let now = self.now();
        let mut checked = CheckedBatch::default();
        let mut seen = std::collections::HashSet::with_capacity(batch.len() * 2);
        for (at, incoming) in batch.into_iter().enumerate() {
            let user = match self.imported_user(incoming, now) {
                Ok(user) => user,
                Err(e) => {
                    checked.report.rejected.push((at, e.message(crate::Lang::En)));
                    continue;
                }
            };
            if !seen.insert(user.mobile.as_str().to_owned()) || !seen.insert(format!("id:{}", user.id)) {
                checked.report.skipped.push((at, user.mobile.as_str().to_owned()));
                continue;
            }
            checked.users.push((at, user));
        }
        checked
    }

    /// The second half of [`Ciam::import_users`]: one write.
    pub async fn store_users(&self, checked: CheckedBatch) -> Result<BatchReport, CiamError> {
        let CheckedBatch { users, mut report } = checked;
        if users.is_empty() {
            return Ok(report);
        }
        let stored: Vec<User> = users.iter().map(|(_, u)| u.clone()).collect();
        let inserted = self.store().insert_users(&stored).await?;
        for ((at, user), inserted) in users.into_iter().zip(inserted) {
            if inserted {
                report.imported += 1;
            } else {
                report.skipped.push((at, user.mobile.as_str().to_owned()));
            }
        }
        report.skipped.sort_unstable();
        Ok(report)
    }

    fn imported_user(&self, incoming: Incoming, now: crate::clock::UnixTime) -> Result<User, CiamError> {
        let id = match incoming.id {
            Some(id) => check_user_id(&id)?,
            None => UserId::new(new_user_id()),
        };
        let hash = self.importable_hash(&incoming.password_hash)?;
        let mut user = self.user_from(&incoming.input, id, hash, now)?;
        user.password_changed_at = incoming.input.password_changed_at.unwrap_or(now);
        Ok(user)
    }

    /// How long one verification of `exported` (a hash as exported, see
    /// [`crate::hashes::from_export`]) takes on this machine, measured with
    /// a wrong password (a miss costs what a match does); `None` for a hash
    /// the server does not take. An import can refuse hashes costlier than
    /// the server's own, which a wrong password's timing would show until
    /// the user's next login upgrades them.
    pub fn verify_cost(&self, exported: &str) -> Option<std::time::Duration> {
        let phc = crate::hashes::from_export(exported).ok()?;
        self.hasher().check_importable(&phc).ok()?;
        Some(self.hasher().time_verification(&phc))
    }

    /// A page of users for an export: those whose id comes after `after`,
    /// in id order.
    pub async fn users_after(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, CiamError> {
        let after = after.map(|id| UserId::new(id.to_owned()));
        Ok(self.store().users_after(after.as_ref(), limit.clamp(1, 10_000)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ciam_line_reads_back_what_an_export_writes() {
        let line = r#"{"id":"u-1","mobile":"+8615200000000","password_hash":"$2b$10$abc","user_name":"alice","name":null,"email":"a@example.com","disabled":true,"password_changed_at":"2026-01-02T03:04:05Z","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}"#;
        let incoming = from_ciam_line(line).expect("read");
        assert_eq!(incoming.id.as_deref(), Some("u-1"));
        assert_eq!(incoming.input.mobile.as_deref(), Some("+8615200000000"));
        assert_eq!(incoming.input.user_name, Some(Some("alice".into())));
        assert_eq!(incoming.input.disabled, Some(true));
        assert_eq!(incoming.input.password_changed_at, crate::clock::from_rfc3339("2026-01-02T03:04:05Z"));
        assert!(from_ciam_line(r#"{"mobile":"1"}"#).is_err_and(|e| e.contains("password_hash")));
        assert!(from_ciam_line(r#"{"mobile":"1","password_hash":"x","bogus":1}"#).is_ok());
        assert!(from_ciam_line("not json").is_err());
    }

    #[test]
    fn auth0_lines_give_the_phone_the_hash_and_the_subject() {
        let export = r#"{"_id":{"$oid":"5f7c8ec7c33c6c004bbafe82"},"email":"a@example.com","phone_number":"+8615200000000","passwordHash":"$2b$10$abc","blocked":true}"#;
        let incoming = from_auth0_line(export).expect("read");
        assert_eq!(incoming.id.as_deref(), Some("auth0|5f7c8ec7c33c6c004bbafe82"));
        assert_eq!(incoming.password_hash, "$2b$10$abc");
        assert_eq!(incoming.input.disabled, Some(true));
        let bulk = r#"{"user_id":"auth0|x1","phone_number":"+8615200000001","custom_password_hash":{"algorithm":"bcrypt","hash":{"value":"$2b$10$def"}}}"#;
        let incoming = from_auth0_line(bulk).expect("read");
        assert_eq!((incoming.id.as_deref(), incoming.password_hash.as_str()), (Some("auth0|x1"), "$2b$10$def"));
        assert!(from_auth0_line(r#"{"email":"a@example.com","passwordHash":"x"}"#).is_err_and(|e| e.contains("phone")));
    }

    #[test]
    fn the_mobile_of_a_keycloak_user_comes_from_where_it_is_asked() {
        assert_eq!("attribute:phone".parse(), Ok(MobileFrom::Attribute("phone".into())));
        assert_eq!("username".parse(), Ok(MobileFrom::Username));
        assert!("attribute:".parse::<MobileFrom>().is_err());
        assert!("email".parse::<MobileFrom>().is_err());
        let realm = serde_json::json!({"realm": "shop", "users": [
            {"id": "k1", "username": "15200000000", "attributes": {"phoneNumber": ["+8615200000009"]}, "credentials": []},
        ]});
        let read = from_keycloak(&realm, &MobileFrom::Attribute("phoneNumber".into())).expect("realm");
        assert!(read[0].as_ref().is_err_and(|e| e.contains("no password credential")), "{read:?}");
        assert!(from_keycloak(&serde_json::json!({"realm": "x"}), &MobileFrom::Username).is_err());
    }
}
