//! Second factors' secrets: TOTP secrets (generated, sealed into their event, opened to check a
//! code) and recovery codes (generated, hashed).
//!
//! A TOTP secret is 160 random bits (RFC 4226 section 4 requires at least 128 and recommends
//! 160), sealed with AES-256-GCM under its own sub-key of the master key, with the tenant and
//! the user as AAD, so that a sealed secret copied to another user does not open.
//!
//! A recovery code is 80 random bits, written as 16 characters of RFC 4648's base32 alphabet in
//! four groups (`abcd-efgh-ijkl-mnop`), and stored as HMAC-SHA-256 under its own sub-key over
//! the tenant, the user and the code. A keyed hash is enough, where a password needs a slow
//! one: Argon2 makes each guess of a *low-entropy* secret expensive, but guessing one of ten
//! 80-bit codes takes about 2^76 tries, out of reach at any hash rate; and without the master
//! key the hashes cannot be tested at all, so a stolen log or database gives nothing to work
//! on. A fast hash also keeps a sign-in with a recovery code as cheap as one with a TOTP code.

use aws_lc_rs::hmac;
use tessera_event_schemas::Hash32;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{Crypto, CryptoError, open_with, random_bytes, seal_with};

/// Bytes of a TOTP secret (160 bits, RFC 4226 section 4).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Random bytes of a recovery code (80 bits: 16 base32 characters).
pub const RECOVERY_CODE_BYTES: usize = 10;

/// RFC 4648's base32 alphabet, lower-cased (no 0, 1, 8 or 9, which read like letters).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl Crypto {
    /// Seals `tenant_id`'s user `user_id`'s TOTP secret for its event.
    pub fn seal_totp_secret(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        secret: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.totp_secrets, &person_aad(tenant_id, user_id), secret)
    }

    /// Opens what [`Crypto::seal_totp_secret`] sealed for the same user. Wipe it after use.
    pub fn open_totp_secret(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.totp_secrets, &person_aad(tenant_id, user_id), sealed).map(Zeroizing::new)
    }

    /// The keyed hash of a recovery code of a user, by its normalised form
    /// ([`normalize_recovery_code`]).
    pub fn recovery_code_hash(&self, tenant_id: Uuid, user_id: Uuid, code: &str) -> Hash32 {
        let mut context = hmac::Context::with_key(&self.recovery_codes);
        context.update(&person_aad(tenant_id, user_id));
        context.update(normalize_recovery_code(code).as_bytes());
        Hash32::from_slice(context.sign().as_ref()).unwrap_or_default()
    }
}

fn person_aad(tenant_id: Uuid, user_id: Uuid) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(tenant_id.as_bytes());
    aad[16..].copy_from_slice(user_id.as_bytes());
    aad
}

/// A fresh TOTP secret.
pub fn generate_totp_secret() -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    random_bytes(TOTP_SECRET_BYTES)
}

/// `count` fresh recovery codes, as they are shown to their owner.
pub fn generate_recovery_codes(count: usize) -> Result<Vec<Zeroizing<String>>, CryptoError> {
    (0..count)
        .map(|_| {
            let bytes = random_bytes(RECOVERY_CODE_BYTES)?;
            let mut code = Zeroizing::new(String::with_capacity(19));
            // 80 bits, five at a time, most significant first.
            let bits = bytes
                .iter()
                .fold(0u128, |acc, byte| (acc << 8) | u128::from(*byte));
            for index in 0..16 {
                if index > 0 && index % 4 == 0 {
                    code.push('-');
                }
                let shift = 75 - 5 * index;
                let symbol = usize::try_from((bits >> shift) & 0x1f).unwrap_or(0);
                code.push(char::from(BASE32[symbol]));
            }
            Ok(code)
        })
        .collect()
}

/// A recovery code as typed, made comparable: lower-cased, without spaces or dashes.
pub fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    const TENANT: Uuid = Uuid::from_u128(1);
    const USER: Uuid = Uuid::from_u128(2);
    const OTHER: Uuid = Uuid::from_u128(3);

    fn crypto(byte: u8) -> Crypto {
        Crypto::new(&MasterKey::from_bytes([byte; 32])).expect("derive keys")
    }

    #[test]
    fn a_totp_secret_opens_only_for_its_user_under_its_master_key() {
        let secret = generate_totp_secret().unwrap();
        assert_eq!(secret.len(), TOTP_SECRET_BYTES);
        let sealed = crypto(1).seal_totp_secret(TENANT, USER, &secret).unwrap();
        assert_eq!(
            crypto(1)
                .open_totp_secret(TENANT, USER, &sealed)
                .unwrap()
                .as_slice(),
            secret.as_slice()
        );
        assert!(crypto(1).open_totp_secret(TENANT, OTHER, &sealed).is_err());
        assert!(crypto(2).open_totp_secret(TENANT, USER, &sealed).is_err());
        // Not the general sealing key either: a TOTP secret is no signing key.
        assert!(crypto(1).open(&person_aad(TENANT, USER), &sealed).is_err());
    }

    #[test]
    fn recovery_codes_are_80_random_bits_in_four_groups() {
        let codes = generate_recovery_codes(10).unwrap();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 19, "{}", code.as_str());
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(groups.len(), 4);
            assert!(
                groups
                    .iter()
                    .all(|g| g.len() == 4 && g.bytes().all(|c| BASE32.contains(&c)))
            );
        }
        let mut distinct: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
    }

    #[test]
    fn a_recovery_code_hashes_the_same_however_it_is_typed_but_not_for_another_user() {
        let crypto = crypto(1);
        let hash = crypto.recovery_code_hash(TENANT, USER, "abcd-efgh-ijkl-mnop");
        assert_eq!(
            crypto.recovery_code_hash(TENANT, USER, " ABCD EFGH ijkl-mnop "),
            hash
        );
        assert_ne!(
            crypto.recovery_code_hash(TENANT, OTHER, "abcd-efgh-ijkl-mnop"),
            hash
        );
        assert_ne!(
            self::crypto(2).recovery_code_hash(TENANT, USER, "abcd-efgh-ijkl-mnop"),
            hash
        );
    }
}
