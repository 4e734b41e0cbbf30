//! The audit writer: events from concurrent calls are committed together,
//! one statement (and one commit) for all that arrived while the previous
//! one ran. Every caller still waits for its own commit, so no answer goes
//! out before its event is stored.

use ciam_core::model::AuditEvent;
use ciam_core::store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::conns::Conns;
use crate::exec::{Exec, Stmt};
use crate::rows::{AUDIT_FIELDS, audit_args};

/// Audit events written per statement (and commit) at most.
const BATCH: usize = 256;

/// An audit event waiting for its commit, and who to tell.
type Job = (AuditEvent, oneshot::Sender<StoreResult<()>>);

/// The handle callers send their events to.
#[derive(Debug, Clone)]
pub(crate) struct AuditWriter {
    jobs: mpsc::Sender<Job>,
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
        let stopped = || StoreError::Backend("audit writer stopped".into());
        let (done, committed) = oneshot::channel();
        self.jobs.send((event.clone(), done)).await.map_err(|_| stopped())?;
        committed.await.map_err(|_| stopped())?
    }
}

async fn write<DB: Exec>(conns: Conns<DB>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let events: Vec<&AuditEvent> = batch.iter().map(|(e, _)| e).collect();
        match DB::execute(&conns, insert_rows(&events)).await {
            Ok(_) => {
                for (_, done) in batch.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some((_, done)) = batch.pop() {
                    let _ = done.send(Err(e));
                }
            }
            // One bad event must not sink the others: retry alone.
            Err(_) => {
                for (event, done) in batch.drain(..) {
                    let _ = done.send(DB::execute(&conns, insert_rows(&[&event])).await.map(|_| ()));
                }
            }
        }
    }
}

/// One `INSERT` of `events`: one round trip and one commit for the batch.
pub(crate) fn insert_rows(events: &[&AuditEvent]) -> Stmt {
    let width = AUDIT_FIELDS.len();
    let rows: Vec<String> = (0..events.len())
        .map(|row| {
            let placeholders: Vec<String> = (1..=width).map(|col| format!("${}", row * width + col)).collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    let sql = format!("INSERT INTO audit_events ({}) VALUES {}", AUDIT_FIELDS.join(", "), rows.join(", "));
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
