//! Moving users and deployments: users in bulk from the files other systems
//! export ([`import`]), and a whole deployment into a fresh database
//! ([`copy`]).

pub mod copy;
pub mod import;
