//! ciam's domain: phone numbers, passwords, policies, lockout, the login
//! state machine, tokens and keys, messages, and the [`Store`] contract.
//! Nothing here knows about HTTP or SQL.

pub mod admin;
pub mod call;
pub mod clock;
pub mod console;
pub mod copy;
pub mod error;
pub mod flows;
pub mod hashes;
pub mod hashpool;
pub mod import;
pub mod inflight;
pub mod keys;
pub mod login;
pub mod mobile;
pub mod model;
pub mod operator;
pub mod password;
pub mod policy;
pub mod retention;
pub mod sealing;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod token;

pub use call::{Call, Caller};
pub use clock::{Clock, OffsetClock, SystemClock, UnixTime};
pub use error::{CiamError, ErrorCode, FieldRefusal, Lang, Localised, Reason, Refusal};
pub use login::{LoginOutcome, SessionGrant};
pub use password::{HashingConfig, Password};
pub use service::{Ciam, CiamConfig};
pub use store::{Store, StoreError, StoreResult};
