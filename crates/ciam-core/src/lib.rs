//! ciam's domain: phone numbers, passwords, policies, lockout, the login
//! state machine, tokens and keys, messages, and the [`Store`] contract.
//! Nothing here knows about HTTP or SQL. [`Ciam`] is the one door in.
//!
//! The modules, by concern:
//! - [`login`]: the login, the check against the locks, the SDK call
//!   around it and the flows after it;
//! - [`tokens`]: opaque tokens, signing keys, sealing;
//! - [`passwords`]: argon2id, the hashing pool, hashes from other systems;
//! - [`policy`]: the password, lockout and throttle policies, calls in
//!   progress per address, the operators' sign-in throttle;
//! - [`admin`]: operator actions, what the console reads, retention;
//! - [`transfer`]: import and copy;
//! - [`oidc`]: OpenID Connect: clients, the code flow, the hosted login
//!   page's logins, browser sessions, tokens and logout;
//! - [`store`]: the storage contract and the model it stores;
//! - and beside them [`service`] (the door), [`error`], [`clock`],
//!   [`mobile`] and [`telemetry`].

pub mod admin;
pub mod clock;
pub mod error;
pub mod login;
pub mod mobile;
pub mod oidc;
pub mod passwords;
pub mod policy;
pub mod service;
pub mod sms;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod transfer;

pub use admin::{console, retention};
pub use login::{call, flows};
pub use passwords::{hashes, hashpool, password};
pub use policy::{inflight, operator};
pub use store::model;
pub use tokens::{keys, sealing, token};
pub use transfer::{copy, import};

pub use call::{Call, Caller};
pub use clock::{Clock, OffsetClock, SystemClock, UnixTime};
pub use error::{CiamError, ErrorCode, FieldRefusal, Lang, Localised, Reason, Refusal};
pub use login::{LoginOutcome, SessionGrant};
pub use password::{HashingConfig, Password};
pub use service::{Ciam, CiamConfig};
pub use store::{Store, StoreError, StoreResult};
