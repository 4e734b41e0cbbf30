//! Tokens and keys: opaque tokens and their digests ([`token`]), the id_token
//! signing keys and their rotation ([`keys`]), one key and its JWK
//! ([`jwk`]), what an id_token says ([`claims`]), private keys sealed at
//! rest ([`sealing`]), and the signer that keeps parsed keys ([`provider`]).

pub mod claims;
pub mod jwk;
pub mod keys;
mod provider;
pub mod sealing;
pub mod token;
