//! Passwords and hashing: argon2id and the secret type ([`password`]), the
//! fair, bounded hashing pool ([`hashpool`]), and hashes from other
//! systems with their bounds ([`hashes`]).

pub mod hashes;
pub mod hashpool;
pub mod password;
