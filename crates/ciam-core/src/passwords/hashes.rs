//! Stored password hashes (docs/api.md §10): the server's argon2id, and the
//! formats users bring from the systems they leave — bcrypt, PBKDF2,
//! scrypt, argon2 with other parameters — verified as they are and replaced
//! by the server's argon2id at the next successful login.
//!
//! Every hash is checked against [`Limits`] when it is imported, and again
//! before it is verified, so that no stored hash can make one verification
//! cost more than about a second of one core or more memory than four times
//! the server's own argon2 `m`.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;

/// What one verification of an imported hash may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most memory one verification may take, KiB (default 4 × the
    /// server's argon2 `m`).
    pub max_memory_kib: u32,
    /// The most argon2 work, `m` × `t`: [`ARGON2_MAX_WORK`], or the
    /// server's own when it is configured dearer.
    pub max_argon2_work: u64,
}

/// bcrypt's largest cost: 2^13 rounds of its key schedule, about half a
/// second of one core.
pub const BCRYPT_MAX_COST: u32 = 13;
/// PBKDF2-SHA256's most iterations (about a second of one core).
pub const PBKDF2_SHA256_MAX_ROUNDS: u32 = 2_000_000;
/// PBKDF2-SHA512's most iterations (about a second of one core).
pub const PBKDF2_SHA512_MAX_ROUNDS: u32 = 1_000_000;
/// argon2's most work, `m` (KiB) × `t`: about a second of one core,
/// twenty-five times the server's default (19,456 KiB × 2).
pub const ARGON2_MAX_WORK: u64 = 1_000_000;
/// scrypt's most work, `N` × `r` × `p`: about a second of one core.
pub const SCRYPT_MAX_WORK: u64 = 1 << 21;

/// A stored hash's kind and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`).
    Argon2 {
        /// Memory, KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// bcrypt (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt {
        /// log2 of the rounds.
        cost: u32,
    },
    /// PBKDF2 with HMAC-SHA256 or HMAC-SHA512 (`$pbkdf2-sha256$`,
    /// `$pbkdf2-sha512$`).
    Pbkdf2 {
        /// SHA-512 rather than SHA-256.
        sha512: bool,
        /// Iterations.
        rounds: u32,
    },
    /// scrypt (`$scrypt$`).
    Scrypt {
        /// log2 of `N`.
        log_n: u8,
        /// Block size.
        r: u32,
        /// Parallelism.
        p: u32,
    },
}

/// Why a hash cannot be stored: the parameter at fault (or `format`) and
/// why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {why}")]
pub struct Refused {
    /// The parameter beyond its bound, or `format`.
    pub parameter: &'static str,
    /// Why.
    pub why: String,
}

fn refused(parameter: &'static str, why: impl Into<String>) -> Refused {
    Refused { parameter, why: why.into() }
}

fn format(why: impl Into<String>) -> Refused {
    refused("format", why)
}

impl Scheme {
    /// Reads the kind and cost of `stored`, without checking bounds.
    pub fn of(stored: &str) -> Result<Scheme, Refused> {
        if let Some(cost) = bcrypt_cost(stored) {
            return cost.map(|cost| Scheme::Bcrypt { cost });
        }
        let hash = PasswordHash::new(stored).map_err(|e| format(format!("not a PHC string or bcrypt hash ({e})")))?;
        if hash.salt.is_none() || hash.hash.is_none() {
            return Err(format("a salt and a hash output are required"));
        }
        match hash.algorithm.as_str() {
            "argon2id" | "argon2i" | "argon2d" => {
                let params = argon2::Params::try_from(&hash).map_err(|e| refused("argon2", e.to_string()))?;
                Ok(Scheme::Argon2 { m_kib: params.m_cost(), t: params.t_cost(), p: params.p_cost() })
            }
            "pbkdf2-sha256" | "pbkdf2-sha512" => {
                let params = pbkdf2::Params::try_from(&hash).map_err(|e| refused("pbkdf2", e.to_string()))?;
                Ok(Scheme::Pbkdf2 { sha512: hash.algorithm.as_str() == "pbkdf2-sha512", rounds: params.rounds })
            }
            "scrypt" => {
                let params = scrypt::Params::try_from(&hash).map_err(|e| refused("scrypt", e.to_string()))?;
                Ok(Scheme::Scrypt { log_n: params.log_n(), r: params.r(), p: params.p() })
            }
            other => Err(format(format!(
                "{other} is not a supported algorithm (argon2, bcrypt, pbkdf2-sha256, pbkdf2-sha512, scrypt)"
            ))),
        }
    }

    /// Checks the cost against `limits`.
    pub fn check(self, limits: Limits) -> Result<(), Refused> {
        let memory = self.memory_kib();
        if memory > u64::from(limits.max_memory_kib) {
            let parameter = match self {
                Scheme::Scrypt { .. } => "N",
                _ => "m",
            };
            return Err(refused(
                parameter,
                format!("needs {memory} KiB of memory, over the {} KiB allowed", limits.max_memory_kib),
            ));
        }
        match self {
            Scheme::Argon2 { m_kib, t, p } => {
                let (work, most) = (u64::from(m_kib) * u64::from(t), limits.max_argon2_work);
                if work > most {
                    return Err(refused("t", format!("m × t = {work} is over {most}")));
                }
                if p > 16 {
                    return Err(refused("p", format!("{p} lanes, over 16")));
                }
            }
            Scheme::Bcrypt { cost } if cost > BCRYPT_MAX_COST => {
                return Err(refused("cost", format!("bcrypt cost {cost} is over {BCRYPT_MAX_COST}")));
            }
            Scheme::Pbkdf2 { sha512, rounds } => {
                let most = if sha512 { PBKDF2_SHA512_MAX_ROUNDS } else { PBKDF2_SHA256_MAX_ROUNDS };
                if rounds > most {
                    return Err(refused("i", format!("{rounds} iterations, over {most}")));
                }
            }
            Scheme::Scrypt { log_n, r, p } => {
                let work = (1u64 << log_n) * u64::from(r) * u64::from(p);
                if work > SCRYPT_MAX_WORK {
                    return Err(refused("N", format!("N × r × p = {work} is over {SCRYPT_MAX_WORK}")));
                }
            }
            Scheme::Bcrypt { .. } => {}
        }
        Ok(())
    }

    /// Memory one verification takes, KiB.
    pub fn memory_kib(self) -> u64 {
        match self {
            Scheme::Argon2 { m_kib, .. } => u64::from(m_kib),
            // 128 × r × N bytes.
            Scheme::Scrypt { log_n, r, .. } => ((1u64 << log_n) * u64::from(r) * 128).div_ceil(1024),
            Scheme::Bcrypt { .. } | Scheme::Pbkdf2 { .. } => 4,
        }
    }
}

/// `Some` with the cost (or why it is malformed) when `stored` is a bcrypt
/// hash, `None` when it is not one.
fn bcrypt_cost(stored: &str) -> Option<Result<u32, Refused>> {
    let rest = ["$2a$", "$2b$", "$2y$", "$2x$"].iter().find_map(|prefix| stored.strip_prefix(prefix))?;
    let parsed = (|| {
        let (cost, tail) = rest.split_once('$').ok_or_else(|| format("bcrypt: no cost"))?;
        let cost: u32 = cost.parse().map_err(|_| format("bcrypt: the cost is not a number"))?;
        if !(4..=31).contains(&cost) {
            return Err(refused("cost", format!("bcrypt cost {cost} is not between 4 and 31")));
        }
        let valid = tail.len() == 53 && tail.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
        if !valid {
            return Err(format("bcrypt: salt and hash must be 53 characters of ./A-Za-z0-9"));
        }
        Ok(cost)
    })();
    Some(parsed)
}

/// Verifies `password` against a stored hash that is not argon2 (those go
/// through the pool's own argon2 code). The caller checked the bounds.
pub fn verify_other(password: &[u8], stored: &str) -> Result<bool, Refused> {
    if bcrypt_cost(stored).is_some() {
        return bcrypt::verify(password, stored).map_err(|e| format(format!("bcrypt: {e}")));
    }
    let hash = PasswordHash::new(stored).map_err(|e| format(e.to_string()))?;
    let outcome = match hash.algorithm.as_str() {
        "pbkdf2-sha256" | "pbkdf2-sha512" => pbkdf2::Pbkdf2.verify_password(password, &hash),
        "scrypt" => scrypt::Scrypt.verify_password(password, &hash),
        other => return Err(format(format!("{other} is not verified here"))),
    };
    match outcome {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(format(e.to_string())),
    }
}

/// A hash as exported by another system, turned into the string it is
/// stored as: a PHC string, or bcrypt's own format.
///
/// Accepted: PHC strings and bcrypt hashes as they are; Django's
/// `pbkdf2_sha256$<iterations>$<salt>$<hash>`; a Keycloak credential
/// (`{"secretData": "{\"value\", \"salt\"}", "credentialData":
/// "{\"hashIterations\", \"algorithm\"}"}`, pbkdf2-sha256, pbkdf2-sha512 or
/// argon2).
pub fn from_export(text: &str) -> Result<String, Refused> {
    let text = text.trim();
    if let Some(django) = text.strip_prefix("pbkdf2_sha256$") {
        return django_pbkdf2(django);
    }
    Ok(text.to_owned())
}

/// What decides the cost of verifying `phc`, for comparing hashes: the
/// string without its salt and digest (bcrypt's `$2b$13$`, argon2's
/// `$argon2id$v=19$m=…,t=…,p=…`), so hashes with one parameter set share it.
pub fn cost_key(phc: &str) -> &str {
    let cut = if phc.starts_with("$2") { 1 } else { 2 };
    let mut end = phc.len();
    for _ in 0..cut {
        end = phc[..end].rfind('$').unwrap_or(0);
    }
    &phc[..end]
}

/// `<iterations>$<salt>$<base64 hash>`, Django's PBKDF2-SHA256 (the salt is
/// text, used as its bytes).
fn django_pbkdf2(rest: &str) -> Result<String, Refused> {
    let mut parts = rest.splitn(3, '$');
    let (Some(rounds), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format("Django pbkdf2_sha256: <iterations>$<salt>$<hash> expected"));
    };
    let rounds: u32 = rounds.parse().map_err(|_| format("Django pbkdf2_sha256: the iterations are not a number"))?;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .map_err(|_| format("Django pbkdf2_sha256: the hash is not base64"))?;
    Ok(pbkdf2_phc("pbkdf2-sha256", rounds, salt.as_bytes(), &hash))
}

/// A PBKDF2 PHC string.
fn pbkdf2_phc(algorithm: &str, rounds: u32, salt: &[u8], hash: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!("${algorithm}$i={rounds},l={}${}${}", hash.len(), b64.encode(salt), b64.encode(hash))
}

/// A Keycloak credential of type `password`, as its realm export writes
/// it: `secretData` and `credentialData` are JSON documents inside strings.
pub fn from_keycloak(credential: &serde_json::Value) -> Result<String, Refused> {
    let inner = |field: &str| -> Result<serde_json::Value, Refused> {
        let text = credential[field].as_str().ok_or_else(|| format(format!("Keycloak credential: no {field}")))?;
        serde_json::from_str(text).map_err(|e| format(format!("Keycloak credential: {field}: {e}")))
    };
    let (secret, data) = (inner("secretData")?, inner("credentialData")?);
    let std = base64::engine::general_purpose::STANDARD;
    let decode = |field: &str| -> Result<Vec<u8>, Refused> {
        let text = secret[field].as_str().ok_or_else(|| format(format!("Keycloak credential: no {field}")))?;
        std.decode(text).map_err(|_| format(format!("Keycloak credential: {field} is not base64")))
    };
    let (hash, salt) = (decode("value")?, decode("salt")?);
    let rounds = data["hashIterations"].as_u64().and_then(|n| u32::try_from(n).ok());
    let rounds = rounds.ok_or_else(|| format("Keycloak credential: no hashIterations"))?;
    match data["algorithm"].as_str().unwrap_or_default() {
        "pbkdf2-sha256" => Ok(pbkdf2_phc("pbkdf2-sha256", rounds, &salt, &hash)),
        "pbkdf2-sha512" => Ok(pbkdf2_phc("pbkdf2-sha512", rounds, &salt, &hash)),
        "argon2" => keycloak_argon2(&data["additionalParameters"], rounds, &salt, &hash),
        other => Err(format(format!(
            "Keycloak credential: algorithm {other:?} is not supported (pbkdf2-sha256, pbkdf2-sha512, argon2)"
        ))),
    }
}

/// Keycloak's argon2 credential: its parameters are lists of strings.
fn keycloak_argon2(parameters: &serde_json::Value, t: u32, salt: &[u8], hash: &[u8]) -> Result<String, Refused> {
    let get = |name: &str, default: &str| -> String { parameters[name][0].as_str().unwrap_or(default).to_owned() };
    let variant = match get("type", "id").as_str() {
        "id" => "argon2id",
        "i" => "argon2i",
        "d" => "argon2d",
        other => return Err(format(format!("Keycloak argon2: type {other:?}"))),
    };
    let version = match get("version", "1.3").as_str() {
        "1.3" => 19,
        "1.0" => 16,
        other => return Err(format(format!("Keycloak argon2: version {other:?}"))),
    };
    let (m, p) = (get("memory", "7168"), get("parallelism", "1"));
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    Ok(format!("${variant}$v={version}$m={m},t={t},p={p}${}${}", b64.encode(salt), b64.encode(hash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_key_is_the_hash_without_salt_and_digest() {
        assert_eq!(cost_key("$2b$13$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"), "$2b$13");
        assert_eq!(cost_key("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"), "$argon2id$v=19$m=19456,t=2,p=1");
        assert_eq!(cost_key("$pbkdf2-sha256$i=600000$c2FsdA$aGFzaA"), "$pbkdf2-sha256$i=600000");
        assert_eq!(cost_key("$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA"), "$scrypt$ln=15,r=8,p=1");
    }
    use argon2::password_hash::{PasswordHasher, SaltString};

    const LIMITS: Limits = Limits { max_memory_kib: 4 * 19_456, max_argon2_work: ARGON2_MAX_WORK };

    fn salt() -> SaltString {
        SaltString::encode_b64(b"0123456789abcdef").expect("salt")
    }

    #[test]
    fn bcrypt_pbkdf2_and_scrypt_verify_and_refuse_wrong_passwords() {
        let bcrypt = bcrypt::hash_with_salt("Passw0rd!", 4, *b"0123456789abcdef")
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoB);
        let pbkdf2 = pbkdf2::Pbkdf2
            .hash_password_customized(
                b"Passw0rd!",
                Some(pbkdf2::Algorithm::Pbkdf2Sha512.ident()),
                None,
                pbkdf2::Params { rounds: 1000, output_length: 64 },
                &salt(),
            )
            .expect("pbkdf2")
            .to_string();
        let scrypt = scrypt::Scrypt
            .hash_password_customized(
                b"Passw0rd!",
                None,
                None,
                scrypt::Params::new(10, 8, 1, 32).expect("params"),
                &salt(),
            )
            .expect("scrypt")
            .to_string();
        for stored in [&bcrypt, &pbkdf2, &scrypt] {
            Scheme::of(stored).and_then(|s| s.check(LIMITS)).expect("importable");
            assert_eq!(verify_other(b"Passw0rd!", stored), Ok(true), "{stored}");
            assert_eq!(verify_other(b"Passw0rd?", stored), Ok(false), "{stored}");
        }
        assert_eq!(Scheme::of(&bcrypt), Ok(Scheme::Bcrypt { cost: 4 }));
        assert_eq!(Scheme::of(&pbkdf2), Ok(Scheme::Pbkdf2 { sha512: true, rounds: 1000 }));
        assert_eq!(Scheme::of(&scrypt), Ok(Scheme::Scrypt { log_n: 10, r: 8, p: 1 }));
    }

    #[test]
    fn costs_beyond_the_bounds_are_refused_naming_the_parameter() {
        let cases = [
            (Scheme::Bcrypt { cost: 14 }, "cost"),
            (Scheme::Pbkdf2 { sha512: false, rounds: 2_000_001 }, "i"),
            (Scheme::Pbkdf2 { sha512: true, rounds: 1_000_001 }, "i"),
            (Scheme::Argon2 { m_kib: 524_288, t: 1, p: 1 }, "m"),
            (Scheme::Argon2 { m_kib: 19_456, t: 1000, p: 1 }, "t"),
            (Scheme::Scrypt { log_n: 20, r: 8, p: 1 }, "N"),
            (Scheme::Scrypt { log_n: 14, r: 8, p: 64 }, "N"),
        ];
        for (scheme, parameter) in cases {
            assert_eq!(scheme.check(LIMITS).map_err(|e| e.parameter), Err(parameter), "{scheme:?}");
        }
        // What real exports use fits.
        for scheme in [
            Scheme::Bcrypt { cost: 10 },
            Scheme::Bcrypt { cost: 13 },
            Scheme::Pbkdf2 { sha512: false, rounds: 1_000_000 },
            Scheme::Pbkdf2 { sha512: false, rounds: 27_500 },
            Scheme::Pbkdf2 { sha512: true, rounds: 210_000 },
            Scheme::Argon2 { m_kib: 19_456, t: 2, p: 1 },
            Scheme::Argon2 { m_kib: 65_536, t: 3, p: 4 },
            Scheme::Scrypt { log_n: 15, r: 8, p: 1 },
        ] {
            assert_eq!(scheme.check(LIMITS), Ok(()), "{scheme:?}");
        }
    }

    #[test]
    fn malformed_and_unknown_hashes_are_refused_as_a_format() {
        for stored in ["plaintext", "$2b$12$short", "$2b$xx$", "$md5$abc$def", "$pbkdf2-sha1$i=1000$c2FsdA$aGFzaA"] {
            assert_eq!(Scheme::of(stored).map_err(|e| e.parameter), Err("format"), "{stored}");
        }
    }

    #[test]
    fn django_and_keycloak_exports_become_phc_strings_that_verify() {
        // Django: pbkdf2_sha256$<iterations>$<salt>$<base64(PBKDF2-HMAC-SHA256)>.
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"Passw0rd!", b"seasalt", 1000, &mut key);
        let std = base64::engine::general_purpose::STANDARD;
        let django = format!("pbkdf2_sha256$1000$seasalt${}", std.encode(key));
        let phc = from_export(&django).expect("converted");
        assert!(phc.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{phc}");
        assert_eq!(verify_other(b"Passw0rd!", &phc), Ok(true));

        // Keycloak: 64 bytes of PBKDF2-HMAC-SHA256, salt and value in base64.
        let mut key = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"Passw0rd!", b"0123456789abcdef", 27_500, &mut key);
        let credential = serde_json::json!({
            "type": "password",
            "createdDate": 1_700_000_000_000_u64,
            "secretData": serde_json::json!({"value": std.encode(key), "salt": std.encode(b"0123456789abcdef"), "additionalParameters": {}}).to_string(),
            "credentialData": serde_json::json!({"hashIterations": 27_500, "algorithm": "pbkdf2-sha256", "additionalParameters": {}}).to_string(),
        });
        let phc = from_keycloak(&credential).expect("converted");
        assert!(phc.starts_with("$pbkdf2-sha256$i=27500,l=64$"), "{phc}");
        assert_eq!(verify_other(b"Passw0rd!", &phc), Ok(true));
        assert_eq!(verify_other(b"wrong", &phc), Ok(false));
    }
}

/// How long the most expensive hash each bound admits takes here; run with
/// `cargo test -p ciam-core hashes::bounds -- --ignored --nocapture`.
#[cfg(test)]
mod bounds {
    use std::time::Instant;

    use argon2::password_hash::{PasswordHasher, SaltString};

    use super::*;

    fn time(name: &str, stored: &str) {
        let started = Instant::now();
        assert_eq!(verify_other(b"x", stored), Ok(false));
        println!("{name}: {:?}", started.elapsed());
    }

    #[test]
    #[ignore = "a measurement, not a check"]
    fn the_dearest_hash_of_each_kind_takes_about_a_second() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let bcrypt = bcrypt::hash_with_salt("y", BCRYPT_MAX_COST, *b"0123456789abcdef").expect("bcrypt");
        time("bcrypt cost 13", &bcrypt.format_for_version(bcrypt::Version::TwoB));
        for (algorithm, rounds) in [
            (pbkdf2::Algorithm::Pbkdf2Sha256, PBKDF2_SHA256_MAX_ROUNDS),
            (pbkdf2::Algorithm::Pbkdf2Sha512, PBKDF2_SHA512_MAX_ROUNDS),
        ] {
            let params = pbkdf2::Params { rounds, output_length: 32 };
            let phc = pbkdf2::Pbkdf2.hash_password_customized(b"y", Some(algorithm.ident()), None, params, &salt);
            time(&format!("{algorithm:?} {rounds}"), &phc.expect("pbkdf2").to_string());
        }
        let params = scrypt::Params::new(16, 8, 4, 32).expect("params");
        let phc = scrypt::Scrypt.hash_password_customized(b"y", None, None, params, &salt).expect("scrypt");
        time("scrypt N=2^16 r=8 p=4", &phc.to_string());
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(77_824, 12, 1, None).expect("params"),
        );
        let started = Instant::now();
        let _ = argon.hash_password(b"y", &salt).expect("argon2");
        println!("argon2id m=77824 t=12 (m × t = 933,888): {:?}", started.elapsed());
    }
}
