//! Password hashing: Argon2id (RFC 9106) through the `argon2` crate, in PHC string form.
//!
//! Passwords are low-entropy secrets chosen by people, so unlike API keys they get a slow,
//! memory-hard hash. The defaults are OWASP's (Password Storage Cheat Sheet: Argon2id with
//! m = 19 MiB, t = 2, p = 1) and configurable. A PHC string carries its own parameters, so a
//! hash made under older settings still verifies after they change.
//!
//! Each hash or verification takes tens of milliseconds of CPU and `memory_kib` of memory. They
//! run on tokio's blocking threads, never on the runtime's workers, behind a semaphore sized to
//! the cores: a burst of sign-ins queues for a permit instead of starving the runtime or
//! allocating `memory_kib` per request at once (memory stays below permits × `memory_kib`).
//!
//! A sign-in for an address nobody has, or for a user without a password, still verifies the
//! password, against a dummy hash made once under the same parameters
//! ([`Passwords::verify_or_dummy`]), so that the answer takes about as long as for a real user:
//! time does not tell whether an account exists.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use aws_lc_rs::rand;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::CryptoError;

/// Bytes of random salt per hash (RFC 9106 section 3.1 recommends 16).
const SALT_LEN: usize = 16;

/// The Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Config {
    /// Memory per hash, in KiB (`TESSERA_ARGON2_MEMORY_KIB`).
    pub memory_kib: u32,
    /// Passes over the memory (`TESSERA_ARGON2_ITERATIONS`).
    pub iterations: u32,
    /// Lanes (`TESSERA_ARGON2_PARALLELISM`).
    pub parallelism: u32,
}

impl Default for Argon2Config {
    /// OWASP's first Argon2id configuration: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords on blocking threads, a bounded number at a time. Cheap to
/// share behind an `Arc`.
#[derive(Clone)]
pub struct Passwords {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// The hash of a random password, made on first need: what a password is verified against
    /// when there is no real hash.
    dummy: Arc<tokio::sync::OnceCell<String>>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// At most `concurrency` (at least 1) hashes or verifications run at once.
    pub fn new(config: Argon2Config, concurrency: usize) -> Result<Self, CryptoError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|_| CryptoError::Failed("invalid Argon2 parameters"))?;
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: Arc::default(),
        })
    }

    /// As many concurrent hashes as the machine has cores.
    pub fn sized_to_cores(config: Argon2Config) -> Result<Self, CryptoError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(config, cores)
    }

    /// The PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`) of `password` under a
    /// fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let mut salt = [0u8; SALT_LEN];
        rand::fill(&mut salt).map_err(|_| CryptoError::Failed("random generation"))?;
        let argon2 = self.argon2.clone();
        self.blocking(password, move |password| {
            argon2
                .hash_password_with_salt(password, &salt)
                .map(|hash| hash.to_string())
                .map_err(|_| CryptoError::Failed("argon2 hash"))
        })
        .await
    }

    /// Whether `password` matches the PHC string `hash` (compared in constant time). A hash
    /// that does not parse matches nothing.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool, CryptoError> {
        self.matches_any(password, vec![hash.to_owned()]).await
    }

    /// Whether `password` matches `hash`; without a hash, the same work against a dummy one,
    /// which nothing matches, so that the time taken does not tell the two cases apart.
    pub async fn verify_or_dummy(
        &self,
        password: &str,
        hash: Option<&str>,
    ) -> Result<bool, CryptoError> {
        match hash {
            Some(hash) => self.verify(password, hash).await,
            None => {
                let dummy = self
                    .dummy
                    .get_or_try_init(|| async {
                        let mut random = [0u8; 32];
                        rand::fill(&mut random)
                            .map_err(|_| CryptoError::Failed("random generation"))?;
                        self.hash(&URL_SAFE_NO_PAD.encode(random)).await
                    })
                    .await?;
                self.verify(password, dummy).await?;
                Ok(false)
            }
        }
    }

    /// Whether `password` matches any of `hashes` (a password history), all checked on one
    /// permit. Every hash is checked, so the time does not tell which one matched.
    pub async fn matches_any(
        &self,
        password: &str,
        hashes: Vec<String>,
    ) -> Result<bool, CryptoError> {
        if hashes.is_empty() {
            return Ok(false);
        }
        let argon2 = self.argon2.clone();
        self.blocking(password, move |password| {
            Ok(hashes.iter().fold(false, |matched, hash| {
                argon2.verify_password(password, hash.as_str()).is_ok() | matched
            }))
        })
        .await
    }

    /// Runs `work` on a blocking thread once a permit is free, with a copy of `password` that
    /// is wiped afterwards.
    async fn blocking<T: Send + 'static>(
        &self,
        password: &str,
        work: impl FnOnce(&[u8]) -> Result<T, CryptoError> + Send + 'static,
    ) -> Result<T, CryptoError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CryptoError::Failed("password hashing stopped"))?;
        let password = Zeroizing::new(password.as_bytes().to_vec());
        tokio::task::spawn_blocking(move || {
            let result = work(&password);
            drop(permit);
            result
        })
        .await
        .map_err(|_| CryptoError::Failed("password hashing task"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    fn passwords() -> Passwords {
        let config = Argon2Config {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        };
        Passwords::new(config, 2).unwrap()
    }

    #[test]
    fn the_defaults_are_owasps() {
        assert_eq!(
            Argon2Config::default(),
            Argon2Config {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let passwords = passwords();
        let hash = passwords.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(!hash.contains("correct"));
        assert!(
            passwords
                .verify("correct horse battery", &hash)
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong horse", &hash).await.unwrap());
        assert!(!passwords.verify("anything", "not a hash").await.unwrap());
        // A fresh salt each time.
        assert_ne!(passwords.hash("correct horse battery").await.unwrap(), hash);
    }

    #[tokio::test]
    async fn a_hash_made_under_other_parameters_still_verifies() {
        let old = passwords().hash("s3cret-enough").await.unwrap();
        let stronger = Passwords::new(
            Argon2Config {
                memory_kib: 128,
                iterations: 2,
                parallelism: 1,
            },
            1,
        )
        .unwrap();
        assert!(stronger.verify("s3cret-enough", &old).await.unwrap());
    }

    #[tokio::test]
    async fn a_history_matches_when_any_hash_does() {
        let passwords = passwords();
        let history = vec![
            passwords.hash("first one").await.unwrap(),
            passwords.hash("second one").await.unwrap(),
        ];
        assert!(
            passwords
                .matches_any("second one", history.clone())
                .await
                .unwrap()
        );
        assert!(!passwords.matches_any("third one", history).await.unwrap());
        assert!(!passwords.matches_any("third one", vec![]).await.unwrap());
    }

    #[tokio::test]
    async fn without_a_hash_a_password_is_verified_against_a_dummy_and_never_matches() {
        let passwords = passwords();
        let hash = passwords.hash("s3cret-enough").await.unwrap();
        assert!(
            passwords
                .verify_or_dummy("s3cret-enough", Some(&hash))
                .await
                .unwrap()
        );
        for _ in 0..2 {
            assert!(
                !passwords
                    .verify_or_dummy("s3cret-enough", None)
                    .await
                    .unwrap()
            );
        }
        assert!(
            passwords
                .dummy
                .get()
                .is_some_and(|d| d.starts_with("$argon2id$"))
        );
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let config = Argon2Config {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Passwords::new(config, 1).is_err());
    }
}
