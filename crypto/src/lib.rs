//! Tessera's cryptography: the master key, the keys derived from it, signing key generation and
//! secret generation. Everything goes through aws-lc-rs.
//!
//! One 32-byte master key (from `TESSERA_MASTER_KEY` or `<data-dir>/master-key`) is the root of
//! every secret the server keeps. It is never used directly: HKDF-SHA256 (RFC 5869) derives one
//! sub-key per purpose, each under its own `info` label, so that a weakness in one use cannot
//! leak into another:
//! - an AES-256-GCM key that seals tenant signing keys (and anything else stored encrypted);
//! - an HMAC-SHA256 key that hashes API key and client secrets (a keyed hash, so that a stolen
//!   event log alone cannot be used to test guesses offline);
//! - an Ed25519 seed that signs event-log checkpoints;
//! - an AES-256-GCM key that seals per-person data keys before they go to the key table
//!   ([`personal`]);
//! - an HMAC-SHA256 key for the keyed hashes of normalised email addresses (uniqueness and exact
//!   lookups without the address in clear);
//! - an HMAC-SHA256 key for the keyed hashes of session cookies (how a presented cookie finds its
//!   session; the cookie's value itself is never stored);
//! - an HMAC-SHA256 key for the CSRF tokens of the hosted pages' forms.
//! - an AES-256-GCM key that seals users' TOTP secrets inside their events ([`mfa`]);
//! - an HMAC-SHA256 key for the keyed hashes of recovery codes ([`mfa`]);
//! - an AES-256-GCM key that seals tenants' vault key-encryption keys ([`vault`]);
//! - an HMAC-SHA256 key for the keyed hashes of upstream identities, and an AES-256-GCM key
//!   that seals federated sign-ins' states ([`federation`]).
//!
//! A crate of its own because both sides need it: the write side (`commands`: generating keys
//! and secrets, sealing) and the read side (`replay-tools`: trusting the checkpoint key derived
//! from the master key), and the replay tools must never depend on the write side. It knows
//! nothing of events beyond the `SigningKeyV1` it fills in, nothing of HTTP, read models or
//! domain rules, and it must not log key material.
//!
//! # Layout
//! - this file: [`MasterKey`], [`Crypto`] (the sub-keys and what they do), signing key
//!   generation, checkpoint signing, secret generation.
//! - [`jws`]: [`JwsSigner`], compact JWS signing of access tokens.
//! - [`personal`]: per-person data keys ([`PersonalKeys`], [`DataKey`]) that seal personal
//!   data, kept in the event log's key table so that destroying one erases a person.
//! - [`password`]: Argon2id password hashing on blocking threads ([`Passwords`]).
//! - [`mfa`]: TOTP secrets (generated, sealed, opened) and recovery codes (generated, hashed).
//! - [`vault`]: the credential vault's per-tenant, versioned key-encryption keys and the
//!   envelope encryption of credentials (`tsr:v{n}:...`), with rewrap and crypto-shredding.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    UnparsedPublicKey,
};
use aws_lc_rs::{digest, hkdf, hmac, rand, rsa};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use tessera_event_log::CheckpointSigner;
use tessera_event_schemas::events::{PublicJwkV1, SigningAlg, SigningKeyV1};
use tessera_event_schemas::{Hash32, Timestamp};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

/// Name of the master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master-key";

/// Prefix of every API key plaintext, so that leaked keys are recognisable (secret scanners).
pub const API_KEY_PREFIX: &str = "tsr_";
/// How many leading characters of an API key are stored in clear to recognise it by.
pub const API_KEY_PREFIX_LEN: usize = 12;

/// Prefix of every OAuth client secret, for the same reason.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";

/// HKDF salt (RFC 5869 section 3.1: a fixed, non-secret salt is fine when the input key is
/// already uniformly random; it domain-separates Tessera from other users of the same key).
const HKDF_SALT: &[u8] = b"tessera master key derivation v1";
const INFO_SEAL: &[u8] = b"tessera/v1/seal/aes-256-gcm";
const INFO_SECRET_HASH: &[u8] = b"tessera/v1/secret-hash/hmac-sha256";
const INFO_CHECKPOINT: &[u8] = b"tessera/v1/checkpoint/ed25519-seed";
const INFO_PERSON_KEYS: &[u8] = b"tessera/v1/person-keys/aes-256-gcm";
const INFO_EMAIL_HASH: &[u8] = b"tessera/v1/email-hash/hmac-sha256";
const INFO_SESSION_TOKEN: &[u8] = b"tessera/v1/session-token/hmac-sha256";
const INFO_CSRF: &[u8] = b"tessera/v1/csrf/hmac-sha256";
const INFO_TOTP_SECRET: &[u8] = b"tessera/v1/totp-secret/aes-256-gcm";
const INFO_RECOVERY_CODE: &[u8] = b"tessera/v1/recovery-code/hmac-sha256";
const INFO_CODE_HASH: &[u8] = b"tessera/v1/authorization-code/hmac-sha256";
const INFO_REFRESH_HASH: &[u8] = b"tessera/v1/refresh-token-hash/hmac-sha256";
const INFO_REFRESH_TAG: &[u8] = b"tessera/v1/refresh-token-tag/hmac-sha256";
const INFO_LINK_HASH: &[u8] = b"tessera/v1/link-token-hash/hmac-sha256";
const INFO_VAULT_KEYS: &[u8] = b"tessera/v1/vault-keys/aes-256-gcm";
const INFO_FEDERATED_SUBJECT: &[u8] = b"tessera/v1/federated-subject/hmac-sha256";
const INFO_FEDERATION_STATE: &[u8] = b"tessera/v1/federation-state/aes-256-gcm";

/// Why a cryptographic operation failed. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        path: String,
        source: std::io::Error,
    },
    /// Authentication failed while opening sealed data: wrong key, wrong AAD, or tampering.
    #[error("sealed data could not be opened")]
    Unseal,
    #[error("cryptographic operation failed: {0}")]
    Failed(&'static str),
    /// The key table could not be read or written.
    #[error("key table unavailable: {0}")]
    KeyTable(String),
}

/// The 32-byte root secret. Wiped from memory on drop; never printed.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Failed("random generation"))?;
        Ok(Self(bytes))
    }

    /// Parses `TESSERA_MASTER_KEY`: 64 hex digits, or base64 (standard or URL-safe, padded or
    /// not) of exactly 32 bytes. Surrounding whitespace is ignored.
    pub fn from_env_value(value: &str) -> Result<Self, CryptoError> {
        let value = value.trim();
        // Hex first: 64 hex digits are also valid base64, but of 48 bytes.
        if value.len() == 64 && value.bytes().all(|c| c.is_ascii_hexdigit()) {
            let hash = Hash32::from_hex(value)
                .ok_or_else(|| CryptoError::InvalidMasterKey("malformed hex".to_owned()))?;
            return Ok(Self::from_bytes(hash.0));
        }
        for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
            if let Ok(decoded) = engine.decode(value) {
                let decoded = Zeroizing::new(decoded);
                return <[u8; 32]>::try_from(decoded.as_slice())
                    .map(Self::from_bytes)
                    .map_err(|_| {
                        CryptoError::InvalidMasterKey(format!(
                            "decodes to {} bytes, expected exactly 32",
                            decoded.len()
                        ))
                    });
            }
        }
        Err(CryptoError::InvalidMasterKey(
            "expected 64 hex digits or the base64 of 32 bytes".to_owned(),
        ))
    }

    /// Reads `<data_dir>/master-key`, or creates it (mode 0600, fsynced) with a fresh key.
    /// Returns whether the key was generated, so that the caller can warn that production
    /// should supply its own.
    pub fn load_or_generate(data_dir: &Path) -> Result<(Self, bool), CryptoError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let file_error = |source| CryptoError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        // `create_new` makes two processes starting at once agree on one key: the loser
        // finds the file and reads it.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                let key = Self::generate()?;
                let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.0.as_ref())));
                file.write_all(text.as_bytes()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                // Make the new directory entry durable too; best effort, as not every
                // filesystem lets a directory be fsynced.
                if let Ok(dir) = File::open(data_dir) {
                    let _ = dir.sync_all();
                }
                Ok((key, true))
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => {
                let mut text = Zeroizing::new(String::new());
                File::open(&path)
                    .and_then(|mut file| file.read_to_string(&mut text))
                    .map_err(file_error)?;
                let key = Self::from_env_value(&text).map_err(|error| match error {
                    CryptoError::InvalidMasterKey(why) => {
                        CryptoError::InvalidMasterKey(format!("{}: {why}", path.display()))
                    }
                    other => other,
                })?;
                Ok((key, false))
            }
            Err(error) => Err(file_error(error)),
        }
    }

    fn derive(&self, info: &'static [u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        struct Len32;
        impl hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.0.as_ref());
        let info = [info];
        let okm = prk
            .expand(&info, Len32)
            .map_err(|_| CryptoError::Failed("hkdf expand"))?;
        let mut out = Zeroizing::new([0u8; 32]);
        okm.fill(out.as_mut())
            .map_err(|_| CryptoError::Failed("hkdf fill"))?;
        Ok(out)
    }
}

/// The services built from the master key. Cheap to share behind an `Arc`.
pub struct Crypto {
    sealing: RandomizedNonceKey,
    secret_hash: hmac::Key,
    checkpoint: Arc<CheckpointKey>,
    person_keys: RandomizedNonceKey,
    email_hash: hmac::Key,
    session_token: hmac::Key,
    csrf: hmac::Key,
    totp_secrets: RandomizedNonceKey,
    recovery_codes: hmac::Key,
    grants: GrantSecrets,
    links: LinkSecrets,
    vault_keys: RandomizedNonceKey,
    federation: FederationSecrets,
}

impl fmt::Debug for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypto")
            .field("checkpoint_key_id", &self.checkpoint.key_id)
            .finish_non_exhaustive()
    }
}

impl Crypto {
    /// Derives every sub-key. Deriving from 32 bytes fails only if aws-lc itself is broken;
    /// the server treats that as fatal at startup.
    pub fn new(master: &MasterKey) -> Result<Self, CryptoError> {
        let seal_key = master.derive(INFO_SEAL)?;
        let sealing = RandomizedNonceKey::new(&AES_256_GCM, seal_key.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm key"))?;
        let hash_key = master.derive(INFO_SECRET_HASH)?;
        let secret_hash = hmac::Key::new(hmac::HMAC_SHA256, hash_key.as_ref());
        let seed = master.derive(INFO_CHECKPOINT)?;
        let checkpoint = Arc::new(CheckpointKey::from_seed(seed.as_ref())?);
        let wrap_key = master.derive(INFO_PERSON_KEYS)?;
        let person_keys = RandomizedNonceKey::new(&AES_256_GCM, wrap_key.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm key"))?;
        let email_key = master.derive(INFO_EMAIL_HASH)?;
        let email_hash = hmac::Key::new(hmac::HMAC_SHA256, email_key.as_ref());
        let session_key = master.derive(INFO_SESSION_TOKEN)?;
        let session_token = hmac::Key::new(hmac::HMAC_SHA256, session_key.as_ref());
        let csrf_key = master.derive(INFO_CSRF)?;
        let csrf = hmac::Key::new(hmac::HMAC_SHA256, csrf_key.as_ref());
        let totp_key = master.derive(INFO_TOTP_SECRET)?;
        let totp_secrets = RandomizedNonceKey::new(&AES_256_GCM, totp_key.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm key"))?;
        let recovery_key = master.derive(INFO_RECOVERY_CODE)?;
        let recovery_codes = hmac::Key::new(hmac::HMAC_SHA256, recovery_key.as_ref());
        let hmac_key = |info| {
            master
                .derive(info)
                .map(|key| hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()))
        };
        let grants = GrantSecrets {
            code_hash: hmac_key(INFO_CODE_HASH)?,
            refresh_hash: hmac_key(INFO_REFRESH_HASH)?,
            refresh_tag: hmac_key(INFO_REFRESH_TAG)?,
        };
        let links = LinkSecrets {
            hash: hmac_key(INFO_LINK_HASH)?,
        };
        let vault_key = master.derive(INFO_VAULT_KEYS)?;
        let vault_keys = RandomizedNonceKey::new(&AES_256_GCM, vault_key.as_ref())
            .map_err(|_| CryptoError::Failed("aes-256-gcm key"))?;
        let state_key = master.derive(INFO_FEDERATION_STATE)?;
        let federation = FederationSecrets {
            subject_hash: hmac_key(INFO_FEDERATED_SUBJECT)?,
            state: RandomizedNonceKey::new(&AES_256_GCM, state_key.as_ref())
                .map_err(|_| CryptoError::Failed("aes-256-gcm key"))?,
        };
        Ok(Self {
            sealing,
            secret_hash,
            checkpoint,
            person_keys,
            email_hash,
            session_token,
            csrf,
            totp_secrets,
            recovery_codes,
            grants,
            links,
            vault_keys,
            federation,
        })
    }

    /// Authorization codes and refresh tokens ([`grants`]).
    pub fn grants(&self) -> &GrantSecrets {
        &self.grants
    }

    /// Tokens of emailed links: invitations, password resets, address verifications
    /// ([`links`]).
    pub fn links(&self) -> &LinkSecrets {
        &self.links
    }

    /// Federated sign-in: subject hashes and sealed states ([`federation`]).
    pub fn federation(&self) -> &FederationSecrets {
        &self.federation
    }

    /// AES-256-GCM with a fresh random 96-bit nonce (NIST SP 800-38D section 8.2.2: random
    /// nonces are safe for up to 2^32 messages per key). Returns `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.sealing, aad, plaintext)
    }

    /// Opens what [`Crypto::seal`] produced under the same AAD.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.sealing, aad, sealed)
    }

    /// HMAC-SHA256, under the derived email-hash key, of `tenant_id`'s 16 bytes followed by an
    /// email address the caller has already normalised (trimmed and lower-cased, by the
    /// domain's rule): the uniqueness key and exact-match lookup key of an address, which
    /// holds no address in clear and cannot be tested against guesses without the master key.
    /// The tenant is part of the input, so one address hashes differently in every tenant.
    pub fn email_hash(&self, tenant_id: Uuid, normalized_email: &str) -> Hash32 {
        let mut context = hmac::Context::with_key(&self.email_hash);
        context.update(tenant_id.as_bytes());
        context.update(normalized_email.as_bytes());
        Hash32::from_slice(context.sign().as_ref()).unwrap_or_default()
    }

    /// HMAC-SHA256, under the derived session-token key, of a session cookie's value (256
    /// random bits, base64url): what a session is stored and found by. A fast keyed hash is
    /// enough for a random value, and it runs on every signed-in request.
    pub fn session_token_hash(&self, token: &str) -> Hash32 {
        let tag = hmac::sign(&self.session_token, token.as_bytes());
        Hash32::from_slice(tag.as_ref()).unwrap_or_default()
    }

    /// The CSRF token for a form shown to the browser holding `binding` (its random CSRF
    /// cookie and the page's tenant): base64url of HMAC-SHA256 under the derived CSRF key. Only
    /// the server can make one, and only for that browser.
    pub fn csrf_token(&self, binding: &[u8]) -> String {
        b64url(hmac::sign(&self.csrf, binding).as_ref())
    }

    /// Whether `token` is the CSRF token of `binding`, compared in constant time.
    pub fn verify_csrf(&self, binding: &[u8], token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|tag| hmac::verify(&self.csrf, binding, &tag).is_ok())
    }

    /// HMAC-SHA256 of a secret under the derived secret-hash key. Secrets are 256-bit random
    /// values, so a fast keyed hash is enough; a password hash would add nothing but latency.
    pub fn secret_hash(&self, plaintext: &str) -> Hash32 {
        let tag = hmac::sign(&self.secret_hash, plaintext.as_bytes());
        Hash32::from_slice(tag.as_ref()).unwrap_or_default()
    }

    /// Checks a presented secret against a stored hash in constant time.
    pub fn verify_secret(&self, plaintext: &str, hash: &Hash32) -> bool {
        hmac::verify(&self.secret_hash, plaintext.as_bytes(), &hash.0).is_ok()
    }

    /// The checkpoint signer to hand to the event log.
    pub fn checkpoint_signer(&self) -> Arc<dyn CheckpointSigner> {
        self.checkpoint.clone()
    }

    /// The raw Ed25519 public key that verifies checkpoints.
    pub fn checkpoint_public_key(&self) -> [u8; 32] {
        self.checkpoint.public_key
    }

    /// The checkpoint key's id: the first 16 hex digits of SHA-256 of its public key.
    pub fn checkpoint_key_id(&self) -> &str {
        &self.checkpoint.key_id
    }

    /// Verifies a checkpoint signature made by this master key's checkpoint key.
    pub fn verify_checkpoint(&self, message: &[u8], signature: &[u8]) -> bool {
        verify_checkpoint_with(&self.checkpoint.public_key, message, signature)
    }

    /// Generates a signing key for `tenant_id`, sealing its PKCS#8 private key with
    /// AAD = `tenant_id bytes || kid`, so that a sealed key copied to another tenant or kid
    /// does not open.
    pub fn generate_signing_key(
        &self,
        alg: SigningAlg,
        tenant_id: Uuid,
        kid: String,
        now: Timestamp,
    ) -> Result<SigningKeyV1, CryptoError> {
        let (pkcs8, public_jwk) = match alg {
            SigningAlg::ES256 => generate_es256()?,
            SigningAlg::EdDSA => generate_ed25519()?,
            SigningAlg::RS256 => generate_rs256()?,
        };
        let sealed_private_key = self.seal(&key_aad(tenant_id, &kid), &pkcs8)?;
        Ok(SigningKeyV1 {
            kid,
            alg,
            public_jwk,
            sealed_private_key: sealed_private_key.into(),
            created_at: now,
        })
    }

    /// The PKCS#8 DER of a tenant's private signing key. Wipe it after use.
    pub fn unseal_private_key(
        &self,
        tenant_id: Uuid,
        key: &SigningKeyV1,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.open(&key_aad(tenant_id, &key.kid), &key.sealed_private_key)
            .map(Zeroizing::new)
    }

    /// Unseals one of `tenant_id`'s keys and parses it into a signer for access tokens. The
    /// unsealed PKCS#8 bytes are wiped as soon as they are parsed.
    pub fn token_signer(
        &self,
        tenant_id: Uuid,
        kid: &str,
        alg: SigningAlg,
        sealed_private_key: &[u8],
    ) -> Result<JwsSigner, CryptoError> {
        let pkcs8 = Zeroizing::new(self.open(&key_aad(tenant_id, kid), sealed_private_key)?);
        JwsSigner::new(alg, kid, &pkcs8)
    }
}

/// AES-256-GCM sealing under `key`: `nonce || ciphertext || tag`.
fn seal_with(
    key: &RandomizedNonceKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut in_out = plaintext.to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut in_out)
        .map_err(|_| CryptoError::Failed("seal"))?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
    sealed.extend_from_slice(nonce.as_ref());
    sealed.extend_from_slice(&in_out);
    in_out.zeroize();
    Ok(sealed)
}

/// Opens what [`seal_with`] produced under the same key and AAD.
fn open_with(key: &RandomizedNonceKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN {
        return Err(CryptoError::Unseal);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Unseal)?;
    let mut in_out = ciphertext.to_vec();
    let plaintext = key
        .open_in_place(nonce, Aad::from(aad), &mut in_out)
        .map_err(|_| CryptoError::Unseal)?
        .to_vec();
    in_out.zeroize();
    Ok(plaintext)
}

fn key_aad(tenant_id: Uuid, kid: &str) -> Vec<u8> {
    let mut aad = tenant_id.as_bytes().to_vec();
    aad.extend_from_slice(kid.as_bytes());
    aad
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

type Generated = (Zeroizing<Vec<u8>>, PublicJwkV1);

fn generate_es256() -> Result<Generated, CryptoError> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| CryptoError::Failed("P-256 key generation"))?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| CryptoError::Failed("P-256 PKCS#8 encoding"))?;
    // SEC 1 uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    let (x, y) = match point {
        [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
        _ => return Err(CryptoError::Failed("unexpected P-256 public key encoding")),
    };
    Ok((
        Zeroizing::new(pkcs8.as_ref().to_vec()),
        PublicJwkV1::Ec {
            x: b64url(x),
            y: b64url(y),
        },
    ))
}

fn generate_ed25519() -> Result<Generated, CryptoError> {
    let pair =
        Ed25519KeyPair::generate().map_err(|_| CryptoError::Failed("Ed25519 key generation"))?;
    // PKCS#8 v1 (RFC 5208) is what OpenSSL and most JWT libraries expect.
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| CryptoError::Failed("Ed25519 PKCS#8 encoding"))?;
    Ok((
        Zeroizing::new(pkcs8.as_ref().to_vec()),
        PublicJwkV1::Okp {
            x: b64url(pair.public_key().as_ref()),
        },
    ))
}

fn generate_rs256() -> Result<Generated, CryptoError> {
    // 2048-bit RSA: the minimum NIST SP 800-57 Part 1 accepts through 2030.
    let pair = rsa::KeyPair::generate(rsa::KeySize::Rsa2048)
        .map_err(|_| CryptoError::Failed("RSA key generation"))?;
    let pkcs8: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| CryptoError::Failed("RSA PKCS#8 encoding"))?;
    let (n, e) = rsa_public_components(pair.public_key().as_ref())
        .ok_or(CryptoError::Failed("unexpected RSA public key encoding"))?;
    Ok((
        Zeroizing::new(pkcs8.as_ref().to_vec()),
        PublicJwkV1::Rsa {
            n: b64url(n),
            e: b64url(e),
        },
    ))
}

/// Splits an RFC 8017 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
/// (DER) into big-endian `n` and `e` without leading zeros, as JWK wants (RFC 7518 6.3.1).
fn rsa_public_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (body, rest) = der_element(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (n, rest) = der_element(body, 0x02)?;
    let (e, rest) = der_element(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    Some((strip_leading_zeros(n), strip_leading_zeros(e)))
}

/// One DER element with the given tag: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, input) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, input) = input.split_first()?;
    let (len, input) = if first < 0x80 {
        (usize::from(first), input)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (len_bytes, input) = input.split_at(count);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
        (len, input)
    };
    (input.len() >= len).then(|| input.split_at(len))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    &bytes[start..]
}

/// Signs event-log checkpoints with an Ed25519 key derived from the master key, so that the
/// same master key always yields the same checkpoint key (no extra key to back up).
pub struct CheckpointKey {
    pair: Ed25519KeyPair,
    public_key: [u8; 32],
    key_id: String,
}

impl CheckpointKey {
    fn from_seed(seed: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| CryptoError::Failed("Ed25519 key from seed"))?;
        let public_key = <[u8; 32]>::try_from(pair.public_key().as_ref())
            .map_err(|_| CryptoError::Failed("Ed25519 public key length"))?;
        Ok(Self {
            pair,
            public_key,
            key_id: checkpoint_key_id(&public_key),
        })
    }
}

impl CheckpointSigner for CheckpointKey {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The id of a checkpoint public key: the first 16 hex digits of its SHA-256.
pub fn checkpoint_key_id(public_key: &[u8]) -> String {
    let digest = digest::digest(&digest::SHA256, public_key);
    Hash32::from_slice(digest.as_ref())
        .unwrap_or_default()
        .to_hex()
        .chars()
        .take(16)
        .collect()
}

/// Verifies a checkpoint signature with a raw Ed25519 public key (for tools that hold only the
/// public key).
pub fn verify_checkpoint_with(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// `{yyyymmdd}-{8 random base64url characters}`: sortable by creation day, unique enough
/// (48 random bits) that two keys of one tenant never collide in practice; the aggregate
/// refuses a duplicate anyway.
pub fn new_kid(now: Timestamp) -> Result<String, CryptoError> {
    let mut random = [0u8; 6];
    rand::fill(&mut random).map_err(|_| CryptoError::Failed("random generation"))?;
    Ok(format!(
        "{}-{}",
        now.to_datetime().format("%Y%m%d"),
        b64url(&random)
    ))
}

/// `len` random bytes from the system's generator, wiped on drop.
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    rand::fill(bytes.as_mut_slice()).map_err(|_| CryptoError::Failed("random generation"))?;
    Ok(bytes)
}

/// 32 random bytes (256 bits), base64url without padding: 43 characters.
pub fn generate_secret() -> Result<String, CryptoError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::fill(bytes.as_mut()).map_err(|_| CryptoError::Failed("random generation"))?;
    Ok(b64url(bytes.as_ref()))
}

/// A new OAuth client secret: `tcs_` followed by 43 base64url characters (256 bits).
pub fn generate_client_secret() -> Result<String, CryptoError> {
    Ok(format!("{CLIENT_SECRET_PREFIX}{}", generate_secret()?))
}

/// SHA-256 of an issued token's compact form: how the API's bounded cache of verified tokens
/// recognises a token when it is presented again, and how `token.issued` v1 events recorded it
/// (v2 records none: its `jti` identifies it). Tokens carry a 122-bit random `jti` and a
/// signature, so the hash cannot be inverted or guessed; it is not keyed, so that an auditor
/// holding a token can find its v1 event without the master key.
pub fn token_hash(token: &str) -> Hash32 {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    Hash32::from_slice(digest.as_ref()).unwrap_or_default()
}

/// A new API key plaintext: `tsr_` followed by 43 base64url characters.
pub fn generate_api_key() -> Result<String, CryptoError> {
    Ok(format!("{API_KEY_PREFIX}{}", generate_secret()?))
}

/// The part of an API key stored in clear: its first 12 characters.
pub fn api_key_prefix(plaintext: &str) -> String {
    plaintext.chars().take(API_KEY_PREFIX_LEN).collect()
}

/// A random value below `max_exclusive`, for retry jitter; not for secrets.
pub fn jitter(max_exclusive: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if max_exclusive == 0 || rand::fill(&mut bytes).is_err() {
        return 0;
    }
    u64::from_le_bytes(bytes) % max_exclusive
}

pub mod federation;
pub mod grants;
pub mod jws;
pub mod links;
pub mod mfa;
pub mod password;
pub mod personal;
pub mod vault;

pub use federation::FederationSecrets;
pub use grants::{GrantSecrets, RefreshTokenId, pkce_s256};
pub use jws::JwsSigner;
pub use links::LinkSecrets;
pub use password::{Argon2Config, Passwords};
pub use personal::{DataKey, PersonalKeys};
pub use vault::{VaultError, VaultKeys};

#[cfg(test)]
mod tests;
