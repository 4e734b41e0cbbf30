//! Retention (docs/api.md §8): what the server no longer needs is deleted by a
//! background task, in bounded batches with a pause between them, so the
//! purge never holds the database long enough to stall a login. Where
//! several instances share a database, one at a time purges: the one that
//! holds the purge lease.

use std::time::Duration;

use serde::Serialize;

use crate::error::CiamError;
use crate::service::Ciam;
use crate::store::Purge;
use crate::telemetry;

/// Rows deleted per statement at most.
pub const BATCH: u32 = 1000;

/// The pause between two batches, for the work waiting behind them.
pub const PAUSE: Duration = Duration::from_millis(25);

/// How long the purge lease lasts; renewed before each kind of row, given
/// up at the end of a round (an instance that stops mid-round leaves it to
/// run out).
const LEASE_SECONDS: i64 = 300;

/// The purge lease's name.
const LEASE: &str = "purge";

/// What one round of the purge deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Audit events past the retention period.
    pub audit_events: u64,
    /// Expired sessions.
    pub sessions: u64,
    /// Expired state tokens.
    pub state_tokens: u64,
    /// Failure counters that no longer matter.
    pub failure_counters: u64,
    /// Address windows that have ended.
    pub address_windows: u64,
    /// Console sessions that have expired.
    pub console_sessions: u64,
    /// Places of password checks that lapsed (an instance died mid-hash).
    pub lapsed_checks: u64,
    /// OpenID Connect grants (codes, tokens, browser sessions) past their
    /// time.
    pub oidc_grants: u64,
    /// SMS codes past their time, and SMS windows that have ended.
    pub sms: u64,
}

impl PurgeReport {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.audit_events
            + self.sessions
            + self.state_tokens
            + self.failure_counters
            + self.address_windows
            + self.console_sessions
            + self.lapsed_checks
            + self.oidc_grants
            + self.sms
    }
}

impl Ciam {
    /// One round of the purge, when this instance holds (or can take) the
    /// purge lease; `None` when another instance holds it.
    pub async fn purge(&self) -> Result<Option<PurgeReport>, CiamError> {
        let now = self.now();
        let retention = i64::from(self.config().audit_retention_days) * 86_400;
        let lockout = self.lockout_policy().await?;
        let throttle = self.throttle_policy().await?;
        let kinds = [
            Purge::AuditBefore(now - retention),
            Purge::Sessions(now),
            Purge::StateGrants(now),
            Purge::Failures { now, reset_seconds: lockout.failure_reset_seconds },
            // The operators' sign-in windows share the table: none is
            // purged before the longer of the two windows has passed.
            Purge::Windows {
                now,
                window_seconds: throttle.ip_window_seconds.max(crate::operator::OPERATOR_WINDOW_SECONDS),
            },
            Purge::ConsoleSessions(now),
            Purge::LapsedChecks(now),
            Purge::Grants(now),
            Purge::SmsCodes(now),
            Purge::SmsWindows(now),
        ];
        let mut report = PurgeReport::default();
        for kind in kinds {
            let holder = self.instance_id();
            let now = self.now();
            if !self.store().take_lease(LEASE, holder, now, now + LEASE_SECONDS).await? {
                return Ok(None);
            }
            let deleted = self.purge_all(kind).await?;
            match kind {
                Purge::AuditBefore(_) => report.audit_events = deleted,
                Purge::Sessions(_) => report.sessions = deleted,
                Purge::StateGrants(_) => report.state_tokens = deleted,
                Purge::Failures { .. } => report.failure_counters = deleted,
                Purge::Windows { .. } => report.address_windows = deleted,
                Purge::ConsoleSessions(_) => report.console_sessions = deleted,
                Purge::LapsedChecks(_) => report.lapsed_checks = deleted,
                Purge::Grants(_) => report.oidc_grants = deleted,
                Purge::SmsCodes(_) | Purge::SmsWindows(_) => report.sms += deleted,
            }
        }
        // Done: the lease is free for whichever instance comes next.
        let now = self.now();
        self.store().take_lease(LEASE, self.instance_id(), now, now).await?;
        Ok(Some(report))
    }

    /// Deletes what `kind` names in batches until a batch comes back short.
    async fn purge_all(&self, kind: Purge) -> Result<u64, CiamError> {
        let mut total = 0;
        loop {
            let deleted = self.store().purge(kind, BATCH).await?;
            if let Purge::AuditBefore(_) = kind {
                telemetry::audit_purged(deleted);
            }
            total += deleted;
            if deleted < u64::from(BATCH) {
                return Ok(total);
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
}
