//! Moving a deployment from one store to another (e.g. SQLite to
//! PostgreSQL) with everything a client or operator relies on: users and
//! their hashes and history, apps and members, policies and the admin token
//! digest, signing keys (so id_tokens signed before the move still verify),
//! live sessions, and the audit log in its order. Transient state
//! (state_tokens, failure counters) is not moved.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::store::Store;

/// How many rows of each kind were copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// Settings (policies, admin token digest).
    pub settings: usize,
    /// Apps.
    pub apps: usize,
    /// Users.
    pub users: usize,
    /// App memberships.
    pub members: usize,
    /// Password-history entries.
    pub password_history: usize,
    /// Signing keys.
    pub signing_keys: usize,
    /// Live sessions.
    pub sessions: usize,
    /// Audit events.
    pub audit_events: usize,
}

const PAGE: u32 = 1000;

/// Copies everything from `from` into `to`, which must hold no apps, users
/// or keys yet.
pub async fn copy_store(from: &dyn Store, to: &dyn Store, now: UnixTime) -> Result<CopyReport, CiamError> {
    let occupied = !to.list_apps().await?.is_empty()
        || !to.list_users(None, 1, 0).await?.is_empty()
        || !to.list_signing_keys().await?.is_empty();
    if occupied {
        return Err(CiamError::Internal("the target database is not empty; copy only into a fresh database".into()));
    }
    let mut report = CopyReport::default();
    for (name, value) in from.list_settings().await? {
        to.put_setting(&name, &value).await?;
        report.settings += 1;
    }
    for app in from.list_apps().await? {
        to.insert_app(&app).await?;
        report.apps += 1;
    }
    let mut offset = 0;
    loop {
        let users = from.list_users(None, PAGE, offset).await?;
        for user in &users {
            to.insert_user(user).await?;
        }
        report.users += users.len();
        if users.len() < PAGE as usize {
            break;
        }
        offset += PAGE;
    }
    for (client_id, user_id) in from.list_members().await? {
        to.add_member(&client_id, &user_id).await?;
        report.members += 1;
    }
    for entry in from.list_password_history().await? {
        to.insert_password_history(&entry).await?;
        report.password_history += 1;
    }
    for key in from.list_signing_keys().await?.iter().rev() {
        to.insert_signing_key(key).await?;
        report.signing_keys += 1;
    }
    for stored in from.list_sessions(now).await? {
        to.insert_session(&stored.digest, &stored.session, stored.created_at).await?;
        report.sessions += 1;
    }
    report.audit_events = copy_audit(from, to).await?;
    Ok(report)
}

/// The audit log, a page at a time, oldest first; returns how many events.
async fn copy_audit(from: &dyn Store, to: &dyn Store) -> Result<usize, CiamError> {
    let (mut after, mut copied) = (0, 0);
    loop {
        let events = from.audit_page(after, PAGE).await?;
        for entry in &events {
            match entry.count {
                // A minute of refusals that cost no hash keeps its count.
                1 => to.insert_audit(&entry.event).await?,
                count => to.insert_counted(&entry.event, count).await?,
            }
            after = entry.id;
        }
        copied += events.len();
        if events.len() < PAGE as usize {
            return Ok(copied);
        }
    }
}
