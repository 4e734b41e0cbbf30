//! The phases of a run, one module each.

pub(crate) mod attack;
pub(crate) mod codes;
pub(crate) mod flood;
pub(crate) mod floor;
pub(crate) mod rates;
pub(crate) mod sms;
pub(crate) mod stuffing;

use std::sync::Arc;

use crate::driver::Plan;
use crate::limits::Limits;
use crate::server::Api;

/// What every phase runs with.
pub(crate) struct Run<'a> {
    pub(crate) api: &'a Arc<Api>,
    pub(crate) client: &'a reqwest::Client,
    pub(crate) limits: &'a Limits,
    pub(crate) plan: &'a Plan,
    /// The server's process id, for its CPU.
    pub(crate) pid: u32,
    /// Where the server delivers SMS codes.
    pub(crate) gateway: &'a crate::gateway::Gateway,
}
