//! Tests of the crypto module: sealing, secret hashing, key generation for every algorithm,
//! checkpoint signing and the master key file.

use std::os::unix::fs::PermissionsExt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents, UnparsedPublicKey,
};

use super::*;

const NOW: Timestamp = Timestamp::from_micros(1_800_000_000_000_000);
const TENANT: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);

fn crypto(byte: u8) -> Crypto {
    Crypto::new(&MasterKey::from_bytes([byte; 32])).expect("derive keys")
}

fn decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url without padding")
}

#[test]
fn sealed_data_opens_with_the_same_aad() {
    let crypto = crypto(1);
    let sealed = crypto.seal(b"aad", b"secret").expect("seal");
    assert_eq!(sealed.len(), NONCE_LEN + b"secret".len() + 16);
    assert_eq!(crypto.open(b"aad", &sealed).expect("open"), b"secret");
    // A fresh nonce each time: sealing twice gives different bytes.
    assert_ne!(crypto.seal(b"aad", b"secret").expect("seal"), sealed);
}

#[test]
fn sealed_data_does_not_open_with_another_aad_or_key() {
    let sealed = crypto(1).seal(b"aad", b"secret").expect("seal");
    assert!(matches!(
        crypto(1).open(b"other", &sealed),
        Err(CryptoError::Unseal)
    ));
    assert!(matches!(
        crypto(2).open(b"aad", &sealed),
        Err(CryptoError::Unseal)
    ));
}

#[test]
fn tampered_or_truncated_ciphertext_does_not_open() {
    let crypto = crypto(1);
    let sealed = crypto.seal(b"aad", b"secret").expect("seal");
    for index in [0, NONCE_LEN, sealed.len() - 1] {
        let mut tampered = sealed.clone();
        tampered[index] ^= 1;
        assert!(crypto.open(b"aad", &tampered).is_err(), "byte {index}");
    }
    assert!(crypto.open(b"aad", &sealed[..5]).is_err());
    assert!(crypto.open(b"aad", &sealed[..sealed.len() - 1]).is_err());
}

#[test]
fn secret_hash_is_deterministic_and_keyed() {
    let one = crypto(1);
    let hash = one.secret_hash("tsr_abc");
    assert_eq!(hash, one.secret_hash("tsr_abc"));
    assert_ne!(hash, one.secret_hash("tsr_abd"));
    assert_ne!(hash, crypto(2).secret_hash("tsr_abc"));
    assert!(one.verify_secret("tsr_abc", &hash));
    assert!(!one.verify_secret("tsr_abd", &hash));
    assert!(!crypto(2).verify_secret("tsr_abc", &hash));
}

#[test]
fn an_es256_key_signs_and_its_jwk_verifies() {
    let crypto = crypto(1);
    let key = crypto
        .generate_signing_key(SigningAlg::ES256, TENANT, "k1".into(), NOW)
        .expect("generate");
    assert_eq!(
        (key.alg, key.kid.as_str(), key.created_at),
        (SigningAlg::ES256, "k1", NOW)
    );
    let PublicJwkV1::Ec { x, y } = &key.public_jwk else {
        panic!("expected an EC JWK, got {:?}", key.public_jwk);
    };
    let (x, y) = (decode(x), decode(y));
    assert_eq!((x.len(), y.len()), (32, 32));

    let pkcs8 = crypto.unseal_private_key(TENANT, &key).expect("unseal");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).expect("pkcs8");
    let signature = pair.sign(&SystemRandom::new(), b"message").expect("sign");
    let point = [vec![0x04], x, y].concat();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(b"message", signature.as_ref())
        .expect("verifies with the JWK");
}

#[test]
fn an_eddsa_key_signs_and_its_jwk_verifies() {
    let crypto = crypto(1);
    let key = crypto
        .generate_signing_key(SigningAlg::EdDSA, TENANT, "k1".into(), NOW)
        .expect("generate");
    let PublicJwkV1::Okp { x } = &key.public_jwk else {
        panic!("expected an OKP JWK, got {:?}", key.public_jwk);
    };
    let x = decode(x);
    assert_eq!(x.len(), 32);
    let pkcs8 = crypto.unseal_private_key(TENANT, &key).expect("unseal");
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).expect("pkcs8");
    let signature = pair.sign(b"message");
    UnparsedPublicKey::new(&ED25519, &x)
        .verify(b"message", signature.as_ref())
        .expect("verifies with the JWK");
}

#[test]
fn an_rs256_key_signs_and_its_jwk_verifies() {
    let crypto = crypto(1);
    let key = crypto
        .generate_signing_key(SigningAlg::RS256, TENANT, "k1".into(), NOW)
        .expect("generate");
    let PublicJwkV1::Rsa { n, e } = &key.public_jwk else {
        panic!("expected an RSA JWK, got {:?}", key.public_jwk);
    };
    let (n, e) = (decode(n), decode(e));
    assert_eq!(n.len(), 256);
    assert_ne!(n[0], 0, "no leading zero");
    assert_eq!(e, vec![0x01, 0x00, 0x01]);

    let pkcs8 = crypto.unseal_private_key(TENANT, &key).expect("unseal");
    let pair = RsaKeyPair::from_pkcs8(&pkcs8).expect("pkcs8");
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        b"message",
        &mut signature,
    )
    .expect("sign");
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, b"message", &signature)
        .expect("verifies with the JWK");
}

#[test]
fn a_sealed_private_key_is_bound_to_its_tenant_and_kid() {
    let crypto = crypto(1);
    let key = crypto
        .generate_signing_key(SigningAlg::EdDSA, TENANT, "k1".into(), NOW)
        .expect("generate");
    assert!(crypto.unseal_private_key(Uuid::from_u128(2), &key).is_err());
    let renamed = SigningKeyV1 {
        kid: "k2".into(),
        ..key
    };
    assert!(crypto.unseal_private_key(TENANT, &renamed).is_err());
}

#[test]
fn rsa_public_key_der_is_split_into_n_and_e() {
    // SEQUENCE { INTEGER 0x00 0x81 (leading zero for the sign bit), INTEGER 3 }
    let der = [0x30, 0x07, 0x02, 0x02, 0x00, 0x81, 0x02, 0x01, 0x03];
    assert_eq!(
        rsa_public_components(&der),
        Some((&[0x81u8][..], &[0x03u8][..]))
    );
    assert_eq!(rsa_public_components(&der[..8]), None);
    assert_eq!(rsa_public_components(&[0x31, 0x00]), None);
}

#[test]
fn the_checkpoint_key_is_derived_from_the_master_key() {
    let one = crypto(1);
    let again = crypto(1);
    let other = crypto(2);
    assert_eq!(one.checkpoint_public_key(), again.checkpoint_public_key());
    assert_ne!(one.checkpoint_public_key(), other.checkpoint_public_key());
    let signer = one.checkpoint_signer();
    assert_eq!(signer.key_id(), one.checkpoint_key_id());
    assert_eq!(signer.key_id().len(), 16);
    assert_eq!(
        signer.key_id(),
        checkpoint_key_id(&one.checkpoint_public_key())
    );

    let signature = signer.sign(b"checkpoint");
    assert!(again.verify_checkpoint(b"checkpoint", &signature));
    assert!(!again.verify_checkpoint(b"checkpoinT", &signature));
    assert!(!other.verify_checkpoint(b"checkpoint", &signature));
    assert!(verify_checkpoint_with(
        &one.checkpoint_public_key(),
        b"checkpoint",
        &signature
    ));
}

#[test]
fn master_keys_parse_from_hex_and_every_base64_flavour() {
    let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(250));
    let expected = crypto_from(&MasterKey::from_bytes(bytes));
    let hex = Hash32(bytes).to_hex();
    let inputs = [
        hex.clone(),
        hex.to_uppercase(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        format!("  {}\n", URL_SAFE_NO_PAD.encode(bytes)),
    ];
    for input in inputs {
        let key = MasterKey::from_env_value(&input).expect(&input);
        assert_eq!(crypto_from(&key), expected, "{input}");
    }
}

fn crypto_from(key: &MasterKey) -> Hash32 {
    Crypto::new(key).expect("derive").secret_hash("probe")
}

#[test]
fn malformed_master_keys_are_refused_with_a_clear_error() {
    for input in [
        "",
        "not base64 at all!",
        &STANDARD.encode([0u8; 16]),
        &STANDARD.encode([0u8; 33]),
        &"g".repeat(64),
    ] {
        assert!(
            matches!(
                MasterKey::from_env_value(input),
                Err(CryptoError::InvalidMasterKey(_))
            ),
            "{input:?}"
        );
    }
}

#[test]
fn the_master_key_never_prints() {
    let key = MasterKey::from_bytes([0xab; 32]);
    assert_eq!(format!("{key:?}"), "MasterKey(..)");
    assert!(!format!("{:?}", crypto(0xab)).contains("ab"));
}

#[test]
fn the_master_key_file_is_created_private_and_reloaded_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, generated) = MasterKey::load_or_generate(dir.path()).expect("generate");
    assert!(generated);
    let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (second, generated) = MasterKey::load_or_generate(dir.path()).expect("reload");
    assert!(!generated);
    assert_eq!(crypto_from(&first), crypto_from(&second));
}

#[test]
fn a_corrupt_master_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(MASTER_KEY_FILE), "garbage").expect("write");
    assert!(MasterKey::load_or_generate(dir.path()).is_err());
}

#[test]
fn secrets_kids_and_api_keys_have_their_documented_shapes() {
    let secret = generate_secret().expect("secret");
    assert_eq!(secret.len(), 43);
    assert_eq!(decode(&secret).len(), 32);
    assert_ne!(secret, generate_secret().expect("secret"));

    let api_key = generate_api_key().expect("api key");
    assert!(api_key.starts_with("tsr_"));
    assert_eq!(api_key.len(), 4 + 43);
    assert_eq!(api_key_prefix(&api_key), api_key[..12]);

    let kid = new_kid(NOW).expect("kid");
    let (day, random) = kid.split_once('-').expect("dash");
    assert_eq!(day, "20270115");
    assert_eq!(random.len(), 8);
    assert_eq!(decode(random).len(), 6);
}

#[test]
fn access_tokens_verify_with_jsonwebtoken_against_the_published_jwk_for_every_algorithm() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode_header};

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        sub: String,
        aud: String,
        exp: i64,
    }
    let crypto = crypto(7);
    let claims = Claims {
        iss: "http://127.0.0.1:8080/t/acme".into(),
        sub: "client-1".into(),
        aud: "http://127.0.0.1:8080/t/acme".into(),
        exp: 4_000_000_000,
    };
    for (alg, jwt_alg) in [
        (SigningAlg::ES256, Algorithm::ES256),
        (SigningAlg::EdDSA, Algorithm::EdDSA),
        (SigningAlg::RS256, Algorithm::RS256),
    ] {
        let key = crypto
            .generate_signing_key(alg, TENANT, "k1".into(), NOW)
            .expect("generate");
        let signer = crypto
            .token_signer(TENANT, &key.kid, alg, &key.sealed_private_key)
            .expect("unseal and parse");
        let token = signer.sign(&claims).expect("sign");
        let header = decode_header(&token).expect("header");
        assert_eq!(header.alg, jwt_alg);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some(jws::ACCESS_TOKEN_TYP));
        let decoding = match &key.public_jwk {
            PublicJwkV1::Ec { x, y } => DecodingKey::from_ec_components(x, y),
            PublicJwkV1::Okp { x } => DecodingKey::from_ed_components(x),
            PublicJwkV1::Rsa { n, e } => DecodingKey::from_rsa_components(n, e),
        }
        .expect("decoding key from the public JWK");
        let mut validation = Validation::new(jwt_alg);
        validation.set_issuer(&[&claims.iss]);
        validation.set_audience(&[&claims.aud]);
        let decoded = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation)
            .unwrap_or_else(|e| panic!("{alg:?} token must verify: {e}"));
        assert_eq!(decoded.claims, claims);

        // A signer for the same kid but sealed for another tenant does not open.
        assert!(
            crypto
                .token_signer(Uuid::from_u128(9), &key.kid, alg, &key.sealed_private_key)
                .is_err()
        );
        // A flipped byte in the signature fails verification.
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(jsonwebtoken::decode::<Claims>(&tampered, &decoding, &validation).is_err());
    }
}

#[test]
fn es256_tokens_are_issued_with_low_s_signatures_that_still_verify() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    let crypto = crypto(8);
    let key = crypto
        .generate_signing_key(SigningAlg::ES256, TENANT, "k1".into(), NOW)
        .expect("generate");
    let signer = crypto
        .token_signer(TENANT, &key.kid, SigningAlg::ES256, &key.sealed_private_key)
        .expect("unseal and parse");
    let PublicJwkV1::Ec { x, y } = &key.public_jwk else {
        panic!("an ES256 key publishes an EC JWK");
    };
    let decoding = DecodingKey::from_ec_components(x, y).expect("decoding key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    // Half of all ECDSA signatures come out high-S; 64 tokens all low-S means the signer
    // normalises (a chance of 2^-64 otherwise).
    for n in 0..64 {
        let token = signer.sign(&serde_json::json!({"n": n})).expect("sign");
        let signature = decode(token.rsplit('.').next().expect("three parts"));
        assert!(jws::is_low_s_es256(&signature), "token {n} is high-S");
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .unwrap_or_else(|e| panic!("token {n} must verify: {e}"));
    }
}

#[test]
fn client_secrets_are_prefixed_and_token_hashes_are_sha256() {
    let secret = generate_client_secret().expect("secret");
    assert!(secret.starts_with(CLIENT_SECRET_PREFIX));
    assert_eq!(secret.len(), CLIENT_SECRET_PREFIX.len() + 43);
    assert_ne!(secret, generate_client_secret().expect("secret"));
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        token_hash("abc").to_string(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn email_hashes_are_keyed_and_differ_between_tenants() {
    let other_tenant = Uuid::from_u128(2);
    let hash = crypto(1).email_hash(TENANT, "ada@example.com");
    assert_eq!(crypto(1).email_hash(TENANT, "ada@example.com"), hash);
    assert_ne!(crypto(2).email_hash(TENANT, "ada@example.com"), hash);
    assert_ne!(crypto(1).email_hash(other_tenant, "ada@example.com"), hash);
    assert_ne!(crypto(1).email_hash(TENANT, "bob@example.com"), hash);
    // Not the secret-hash key: a keyed hash of one purpose is no use for another.
    assert_ne!(crypto(1).secret_hash("ada@example.com"), hash);
}

#[test]
fn session_token_hashes_are_keyed_and_differ_from_secret_hashes() {
    let (a, b) = (crypto(1), crypto(2));
    let token = "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(a.session_token_hash(token), a.session_token_hash(token));
    assert_ne!(a.session_token_hash(token), b.session_token_hash(token));
    assert_ne!(a.session_token_hash(token), a.secret_hash(token));
}

#[test]
fn csrf_tokens_verify_for_their_binding_only() {
    let (a, b) = (crypto(1), crypto(2));
    let token = a.csrf_token(b"browser-1\nacme");
    assert_eq!(token.len(), 43);
    assert!(a.verify_csrf(b"browser-1\nacme", &token));
    assert!(!a.verify_csrf(b"browser-2\nacme", &token));
    assert!(!a.verify_csrf(b"browser-1\nother", &token));
    assert!(!b.verify_csrf(b"browser-1\nacme", &token));
    assert!(!a.verify_csrf(b"browser-1\nacme", ""));
    assert!(!a.verify_csrf(b"browser-1\nacme", "not base64!"));
}
