//! The audit writer: events from concurrent calls are committed together,
//! one statement (and one commit) for all that arrived while the previous
//! one ran. Every caller still waits for its own commit, so no answer goes
//! out before its event is stored.

use ciam_core::model::AuditEvent;
use ciam_core::store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::conns::Conns;
use crate::exec::{Arg, Exec, Stmt};
use crate::rows::{AUDIT_FIELDS, audit_args};

/// Audit events written per statement (and commit) at most.
const BATCH: usize = 256;

/// An audit event waiting for its commit, and who to tell. A counted
/// refusal carries the key it is aggregated under.
struct Job {
    event: AuditEvent,
    aggregate: Option<String>,
    /// How many refusals a counted job adds.
    count: i64,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The handle callers send their events to.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job").field("aggregate", &self.aggregate).finish_non_exhaustive()
    }
}

/// Seconds of one aggregation period of counted refusals.
const AGGREGATE_SECONDS: i64 = 60;

/// The key a refusal that cost no hash is counted under: its minute, its
/// address and its outcome.
pub(crate) fn aggregate_key(event: &AuditEvent) -> String {
    let minute = event.at.div_euclid(AGGREGATE_SECONDS);
    // An IPv6 /64 is one address, as for the address throttle.
    let address = match event.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
        Some(Ok(ip)) => ciam_core::model::AddressKey::of(ip).to_string(),
        Some(Err(_)) => event.ip.clone().unwrap_or_default(),
        None => "-".to_owned(),
    };
    format!("{minute}|{address}|{}", event.outcome.as_str())
}

impl AuditWriter {
    /// Starts the writer on `conns`.
    pub fn start<DB: Exec>(conns: Conns<DB>) -> Self {
        let (jobs, queue) = mpsc::channel(4 * BATCH);
        tokio::spawn(write(conns, queue));
        Self { jobs }
    }

    /// Stores `event`; returns once it is committed.
    pub async fn insert(&self, event: &AuditEvent) -> StoreResult<()> {
        self.send(event, None, 1).await
    }

    /// Counts `count` refusals like `event` under its [`aggregate_key`];
    /// returns once committed.
    pub async fn count(&self, event: &AuditEvent, count: i64) -> StoreResult<()> {
        self.send(event, Some(aggregate_key(event)), count).await
    }

    async fn send(&self, event: &AuditEvent, aggregate: Option<String>, count: i64) -> StoreResult<()> {
        let stopped = || StoreError::Backend("audit writer stopped".into());
        let (done, committed) = oneshot::channel();
        self.jobs.send(Job { event: event.clone(), aggregate, count, done }).await.map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write<DB: Exec>(conns: Conns<DB>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let (counted, plain): (Vec<Job>, Vec<Job>) = batch.drain(..).partition(|job| job.aggregate.is_some());
        if !plain.is_empty() {
            commit(&conns, plain, |jobs| insert_rows(&jobs.iter().map(|j| &j.event).collect::<Vec<_>>())).await;
        }
        if !counted.is_empty() {
            commit(&conns, counted, count_rows).await;
        }
    }
}

/// Commits `jobs` in one statement made by `stmt`, and tells each caller.
async fn commit<DB: Exec>(conns: &Conns<DB>, mut jobs: Vec<Job>, stmt: impl Fn(&[Job]) -> Stmt) {
    match DB::execute(conns, stmt(&jobs)).await {
        Ok(_) => {
            for job in jobs {
                let _ = job.done.send(Ok(()));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.pop() {
                let _ = job.done.send(Err(e));
            }
        }
        // One bad event must not sink the others: retry alone.
        Err(_) => {
            for job in jobs {
                let alone = DB::execute(conns, stmt(std::slice::from_ref(&job))).await.map(|_| ());
                let _ = job.done.send(alone);
            }
        }
    }
}

/// One upsert of counted refusals: the jobs of one key are one row (a
/// statement may not touch a row twice), which adds their number to the
/// key's event, or is its first event.
fn count_rows(jobs: &[Job]) -> Stmt {
    let mut rows: Vec<(&AuditEvent, &str, i64)> = Vec::new();
    for job in jobs {
        let key = job.aggregate.as_deref().unwrap_or_default();
        match rows.iter_mut().find(|(_, k, _)| *k == key) {
            Some(row) => row.2 += job.count,
            None => rows.push((&job.event, key, job.count)),
        }
    }
    let sql = format!(
        "INSERT INTO audit_events ({}, count, aggregate_key) VALUES {} \
         ON CONFLICT (aggregate_key) DO UPDATE SET count = audit_events.count + excluded.count",
        AUDIT_FIELDS.join(", "),
        values(rows.len(), AUDIT_FIELDS.len() + 2)
    );
    let args = rows.iter().flat_map(|(event, key, count)| {
        audit_args(event).into_iter().chain([Arg::Int(*count), Arg::Text((*key).to_owned())])
    });
    let stmt = if rows.len() == 1 { Stmt::new(sql) } else { Stmt::once(sql) };
    stmt.bind_all(args)
}

/// `($1, …, $width), ($width + 1, …)`: the placeholders of `rows` rows.
fn values(rows: usize, width: usize) -> String {
    let row = |r: usize| {
        let placeholders: Vec<String> = (1..=width).map(|col| format!("${}", r * width + col)).collect();
        format!("({})", placeholders.join(", "))
    };
    (0..rows).map(row).collect::<Vec<_>>().join(", ")
}

/// One `INSERT` of `events`: one round trip and one commit for the batch.
pub(crate) fn insert_rows(events: &[&AuditEvent]) -> Stmt {
    let sql = format!(
        "INSERT INTO audit_events ({}) VALUES {}",
        AUDIT_FIELDS.join(", "),
        values(events.len(), AUDIT_FIELDS.len())
    );
    let args = events.iter().flat_map(|e| audit_args(e));
    // A single event's statement is the common one: keep it prepared.
    let stmt = if events.len() == 1 { Stmt::new(sql) } else { Stmt::once(sql) };
    stmt.bind_all(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_gets_its_own_placeholders() {
        let event = AuditEvent {
            at: 1,
            action: ciam_core::model::Action::Login,
            outcome: ciam_core::model::Outcome::Status(ciam_core::model::Status::Success),
            mobile: None,
            user_id: None,
            client_id: None,
            device: Default::default(),
            ip: None,
            request_id: None,
        };
        let stmt = format!("{:?}", insert_rows(&[&event, &event]));
        assert!(stmt.contains("($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12), ($13,"), "{stmt}");
        assert!(stmt.contains("$24)"), "{stmt}");
    }
}
