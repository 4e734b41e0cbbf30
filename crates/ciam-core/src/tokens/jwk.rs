//! Signing keys one by one: making a key of each algorithm, opening a stored
//! one, and its public half as a JWK (RFC 7517; Ed25519 keys as RFC 8037's
//! `OKP`).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Serialize;

use crate::clock::UnixTime;
use crate::error::CiamError;
use crate::model::{SigningAlg, SigningKeyRecord};
use crate::sealing::{Sealer, is_sealed};
use crate::token::new_id;

/// One public key of the JWKS.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// `RSA` or `OKP` (Ed25519).
    pub kty: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    #[cfg_attr(feature = "openapi", schema(rename = "use"))]
    pub use_: &'static str,
    /// `RS256` or `EdDSA`.
    pub alg: &'static str,
    /// Key id, as in the id_token header.
    pub kid: String,
    /// `RSA` keys only: the modulus, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub n: Option<String>,
    /// `RSA` keys only: the exponent, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub e: Option<String>,
    /// `OKP` keys only: the curve, `Ed25519`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub crv: Option<&'static str>,
    /// `OKP` keys only: the public key, base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub x: Option<String>,
}

impl Jwk {
    /// The key that verifies what it signed, and how.
    pub(super) fn decoding(&self) -> Option<(DecodingKey, Algorithm)> {
        match (self.n.as_deref(), self.e.as_deref(), self.x.as_deref()) {
            (Some(n), Some(e), _) => Some((DecodingKey::from_rsa_components(n, e).ok()?, Algorithm::RS256)),
            (_, _, Some(x)) => Some((DecodingKey::from_ed_components(x).ok()?, Algorithm::EdDSA)),
            _ => None,
        }
    }
}

/// The JWKS document.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// The published keys: the current key of each algorithm first (RS256,
    /// then EdDSA), then retired keys still published.
    pub keys: Vec<Jwk>,
}

/// A key ready to sign.
pub(super) struct LoadedKey {
    pub(super) kid: String,
    pub(super) encoding: EncodingKey,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Signs nothing: the set before the first load.
    pub(super) fn none() -> Self {
        LoadedKey { kid: String::new(), encoding: EncodingKey::from_secret(&[]) }
    }
}

/// The JWS algorithm of `alg`.
pub(super) fn jws(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// A fresh key record (RSA-2048 or Ed25519), its private key in clear.
pub fn generate_key(alg: SigningAlg, now: UnixTime) -> Result<SigningKeyRecord, CiamError> {
    let failed = |what: &str| CiamError::Internal(format!("{} key {what} failed", alg.as_str()));
    let der = match alg {
        SigningAlg::RS256 => {
            let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("generation"))?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| failed("encoding"))?;
            der.as_ref().to_vec()
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| failed("generation"))?;
            pair.to_pkcs8v1().map_err(|_| failed("encoding"))?.as_ref().to_vec()
        }
    };
    Ok(SigningKeyRecord {
        kid: new_id(),
        alg,
        private_pkcs8: der,
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// The private key of a stored record, opened when it is sealed.
fn plain_key(record: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<Vec<u8>, CiamError> {
    match (is_sealed(&record.private_pkcs8), sealer) {
        (false, _) => Ok(record.private_pkcs8.clone()),
        (true, Some(sealer)) => sealer.open(&record.kid, &record.private_pkcs8),
        (true, None) => Err(CiamError::Internal(
            "the signing keys in the database are encrypted: set CIAM_KEY_ENCRYPTION_KEY to the key they were \
             encrypted with"
                .into(),
        )),
    }
}

/// A stored key, ready to sign, and its JWK.
pub(super) fn load(record: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<(LoadedKey, Jwk), CiamError> {
    let private_pkcs8 = plain_key(record, sealer)?;
    let unusable =
        |e: &dyn std::fmt::Display| CiamError::Internal(format!("stored signing key {} unusable: {e}", record.kid));
    let (encoding, jwk) = match record.alg {
        SigningAlg::RS256 => {
            let pair = KeyPair::from_pkcs8(&private_pkcs8).map_err(|e| unusable(&e))?;
            let public = pair.public_key();
            let jwk = Jwk {
                kty: "RSA",
                n: Some(URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero())),
                e: Some(URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero())),
                ..jwk_of(record)
            };
            // jsonwebtoken's PEM reader unwraps PKCS#8 into the PKCS#1 form
            // its signer wants.
            let pem = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                STANDARD.encode(&private_pkcs8)
            );
            (EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| unusable(&e))?, jwk)
        }
        SigningAlg::EdDSA => {
            let pair = Ed25519KeyPair::from_pkcs8(&private_pkcs8).map_err(|e| unusable(&e))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let jwk = Jwk { kty: "OKP", crv: Some("Ed25519"), x: Some(x), ..jwk_of(record) };
            (EncodingKey::from_ed_der(&private_pkcs8), jwk)
        }
    };
    Ok((LoadedKey { kid: record.kid.clone(), encoding }, jwk))
}

/// The fields every JWK of `record` has.
fn jwk_of(record: &SigningKeyRecord) -> Jwk {
    Jwk {
        kty: "",
        use_: "sig",
        alg: record.alg.as_str(),
        kid: record.kid.clone(),
        n: None,
        e: None,
        crv: None,
        x: None,
    }
}
