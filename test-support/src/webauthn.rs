//! A software WebAuthn authenticator, for tests of passkey ceremonies without a browser.
//!
//! It plays the browser and a platform authenticator together: from the options a relying
//! party's ceremony start returns (`{"publicKey": {...}}`), it makes a discoverable ES256
//! credential (`navigator.credentials.create()`) or signs an assertion with one
//! (`navigator.credentials.get()`), and answers with the JSON a browser's
//! `PublicKeyCredential.toJSON()` gives: `clientDataJSON`, an attestation object of format
//! `none`, authenticator data with real flags and counter, and an ECDSA P-256 signature,
//! byte for byte as WebAuthn Level 3 lays them out. The webauthn-rs project's own software
//! authenticators (`webauthn-authenticator-rs`) make neither discoverable credentials nor user
//! handles, which a sign-in without an address needs.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// WebAuthn authenticator data flags (Level 3, section 6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const BACKUP_ELIGIBLE: u8 = 0x08;
const BACKUP_STATE: u8 = 0x10;
const ATTESTED_CREDENTIAL: u8 = 0x40;

/// One credential the authenticator holds.
pub struct Credential {
    pub id: Vec<u8>,
    pub rp_id: String,
    pub user_handle: Vec<u8>,
    key: EcdsaKeyPair,
    /// The signature counter; `None` for an authenticator that keeps none (always 0).
    pub counter: Option<u32>,
}

/// A software authenticator and the credentials it made.
pub struct SoftAuthenticator {
    pub credentials: Vec<Credential>,
    /// Whether it verifies the user (a PIN or biometric): the UV flag.
    pub user_verification: bool,
    /// Whether its credentials are synchronised passkeys (BE and BS flags).
    pub synced: bool,
    /// Whether it keeps a signature counter.
    pub counts: bool,
}

impl Default for SoftAuthenticator {
    fn default() -> Self {
        Self {
            credentials: Vec::new(),
            user_verification: true,
            synced: false,
            counts: true,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(value.as_str().expect("a base64url string"))
        .expect("base64url")
}

impl SoftAuthenticator {
    /// `navigator.credentials.create({publicKey})` at `origin`: a new credential for the
    /// options' relying party and user.
    pub fn create(&mut self, options: &Value, origin: &str) -> Value {
        let options = &options["publicKey"];
        let rp_id = options["rp"]["id"].as_str().expect("rp.id").to_owned();
        let client_data = client_data("webauthn.create", &options["challenge"], origin);
        let mut id = vec![0u8; 16];
        SystemRandom::new().fill(&mut id).unwrap();
        let excluded = options["excludeCredentials"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| unb64(&c["id"]) == id);
        assert!(!excluded);
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        // SEC 1 uncompressed point: 0x04 || x || y.
        let point = key.public_key().as_ref().to_vec();
        let cose_key = Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),
            (Cbor::Int(3), Cbor::Int(-7)),
            (Cbor::Int(-1), Cbor::Int(1)),
            (Cbor::Int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]);
        let counter = self.counts.then_some(0);
        let mut auth_data = self.auth_data(&rp_id, ATTESTED_CREDENTIAL, counter.unwrap_or(0));
        auth_data.extend_from_slice(&[0; 16]); // AAGUID: none.
        auth_data.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose_key.encode());
        let attestation_object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(Vec::new())),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data)),
        ]);
        self.credentials.push(Credential {
            id: id.clone(),
            rp_id,
            user_handle: unb64(&options["user"]["id"]),
            key,
            counter,
        });
        json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation_object.encode()),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        })
    }

    /// `navigator.credentials.get({publicKey})` at `origin`, choosing the newest credential for
    /// the relying party (of those allowed, when the options list any).
    pub fn get(&mut self, options: &Value, origin: &str) -> Value {
        let index = self.choose(options);
        self.get_with(index, options, origin)
    }

    /// The index of the credential `get` would use.
    pub fn choose(&self, options: &Value) -> usize {
        let options = &options["publicKey"];
        let rp_id = options["rpId"].as_str().expect("rpId");
        let allowed: Vec<Vec<u8>> = options["allowCredentials"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| unb64(&c["id"]))
            .collect();
        self.credentials
            .iter()
            .rposition(|c| c.rp_id == rp_id && (allowed.is_empty() || allowed.contains(&c.id)))
            .expect("a credential for this relying party")
    }

    /// An assertion with credential `index`, which advances its counter.
    pub fn get_with(&mut self, index: usize, options: &Value, origin: &str) -> Value {
        let options = &options["publicKey"];
        let client_data = client_data("webauthn.get", &options["challenge"], origin);
        let credential = &mut self.credentials[index];
        credential.counter = credential.counter.map(|counter| counter + 1);
        let (rp_id, counter) = (credential.rp_id.clone(), credential.counter.unwrap_or(0));
        let auth_data = self.auth_data(&rp_id, 0, counter);
        let credential = &self.credentials[index];
        let mut signed = auth_data.clone();
        signed.extend_from_slice(digest(&SHA256, &client_data).as_ref());
        let signature = credential.key.sign(&SystemRandom::new(), &signed).unwrap();
        json!({
            "id": b64(&credential.id),
            "rawId": b64(&credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.as_ref()),
                "userHandle": b64(&credential.user_handle),
            },
            "clientExtensionResults": {},
        })
    }

    /// `rpIdHash || flags || signCount`, the flags this authenticator sets plus `extra`.
    fn auth_data(&self, rp_id: &str, extra: u8, counter: u32) -> Vec<u8> {
        let mut flags = USER_PRESENT | extra;
        if self.user_verification {
            flags |= USER_VERIFIED;
        }
        if self.synced {
            flags |= BACKUP_ELIGIBLE | BACKUP_STATE;
        }
        let mut data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        data.push(flags);
        data.extend_from_slice(&counter.to_be_bytes());
        data
    }
}

fn client_data(kind: &str, challenge: &Value, origin: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": kind,
        "challenge": challenge.as_str().expect("a challenge"),
        "origin": origin,
        "crossOrigin": false,
    }))
    .unwrap()
}

/// The few CBOR (RFC 8949) values WebAuthn's structures need.
enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Map(Vec<(Cbor, Cbor)>),
}

impl Cbor {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Cbor::Int(value) if *value >= 0 => head(out, 0, value.unsigned_abs()),
            Cbor::Int(value) => head(out, 1, value.unsigned_abs() - 1),
            Cbor::Bytes(bytes) => {
                head(out, 2, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Cbor::Text(text) => {
                head(out, 3, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
            Cbor::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
            }
        }
    }
}

/// A data item's head: major type and argument, in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    match argument {
        0..=23 => out.push(major | argument as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, argument as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(argument as u16).to_be_bytes());
        }
        _ => {
            out.push(major | 26);
            out.extend_from_slice(&(argument as u32).to_be_bytes());
        }
    }
}
