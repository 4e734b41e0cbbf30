//! Tokens and keys: opaque tokens and their digests ([`token`]), the id_token
//! signing keys and their rotation ([`keys`]), what an id_token says
//! ([`claims`]), and private keys sealed at rest ([`sealing`]).

pub mod claims;
pub mod keys;
pub mod sealing;
pub mod token;
