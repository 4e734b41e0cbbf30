//! Tokens and keys: opaque tokens and their digests ([`token`]), the id_token
//! signing keys and their rotation ([`keys`]), and private keys sealed at
//! rest ([`sealing`]).

pub mod keys;
pub mod sealing;
pub mod token;
