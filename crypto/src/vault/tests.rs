//! The vault's keys on the in-memory key table: what opens, what refuses, and what a rewrap and
//! a destroy leave.

use std::sync::Arc;

use tessera_event_log::{Backend, MemoryStore, keys};
use uuid::Uuid;

use super::*;
use crate::{Crypto, MasterKey};

const ACME: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00a1);
const GLOBEX: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00b2);
const NOTION: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0c01);
const GITHUB: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0c02);
const TOKEN: &[u8] = br#"{"access_token":"secret_notion_token","refresh_token":"r1"}"#;

async fn vault(store: &MemoryStore, master: u8) -> VaultKeys {
    let crypto = Arc::new(Crypto::new(&MasterKey::from_bytes([master; 32])).unwrap());
    let table = keys::open(&Backend::Memory {
        store: store.clone(),
    })
    .await
    .unwrap();
    VaultKeys::new(crypto, table)
}

#[tokio::test]
async fn a_credential_opens_for_its_tenant_and_id_only_and_names_its_version() {
    let store = MemoryStore::default();
    let keys = vault(&store, 1).await;
    keys.create(ACME, 1).await.unwrap();
    keys.create(GLOBEX, 1).await.unwrap();
    let sealed = keys.seal(ACME, 1, NOTION, TOKEN).await.unwrap();
    assert!(sealed.starts_with("tsr:v1:"), "{sealed}");
    assert!(!sealed.contains("secret_notion_token"));
    assert_eq!(
        keys.open(ACME, NOTION, &sealed, 1)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    // Another credential's id, another tenant, or a tampered body: nothing opens.
    assert!(keys.open(ACME, GITHUB, &sealed, 1).await.is_err());
    assert!(keys.open(GLOBEX, NOTION, &sealed, 1).await.is_err());
    let mut tampered = sealed.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(keys.open(ACME, NOTION, &tampered, 1).await.is_err());
    assert!(matches!(
        keys.open(ACME, NOTION, "vault:v1:abc", 1).await,
        Err(VaultError::Malformed)
    ));
    // Another process on the same key table and master key opens it; another master key not.
    let other = vault(&store, 1).await;
    assert_eq!(
        other
            .open(ACME, NOTION, &sealed, 1)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    assert!(
        vault(&store, 2)
            .await
            .open(ACME, NOTION, &sealed, 1)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_rewrap_moves_a_credential_to_the_new_version_and_a_minimum_retires_the_old() {
    let store = MemoryStore::default();
    let keys = vault(&store, 1).await;
    keys.create(ACME, 1).await.unwrap();
    let old = keys.seal(ACME, 1, NOTION, TOKEN).await.unwrap();
    keys.create(ACME, 2).await.unwrap();
    let new = keys.rewrap(ACME, NOTION, &old, 1, 2).await.unwrap();
    assert!(new.starts_with("tsr:v2:"), "{new}");
    // The payload's ciphertext is carried over as it was: only the data key was wrapped again.
    let body = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(Sealed::parse(s).unwrap().body)
            .unwrap()
    };
    assert_eq!(body(&old)[WRAPPED_DEK_LEN..], body(&new)[WRAPPED_DEK_LEN..]);
    assert_eq!(
        keys.open(ACME, NOTION, &new, 2).await.unwrap().as_slice(),
        TOKEN
    );
    // With the minimum at 2, version 1's ciphertext is refused, though its key still exists.
    assert!(matches!(
        keys.open(ACME, NOTION, &old, 2).await,
        Err(VaultError::Retired {
            version: 1,
            minimum: 2
        })
    ));
    assert_eq!(
        keys.open(ACME, NOTION, &old, 1).await.unwrap().as_slice(),
        TOKEN
    );
}

#[tokio::test]
async fn destroying_a_tenants_keys_makes_every_credential_unreadable_and_spares_the_others() {
    let store = MemoryStore::default();
    let keys = vault(&store, 1).await;
    keys.create(ACME, 1).await.unwrap();
    keys.create(ACME, 2).await.unwrap();
    keys.create(GLOBEX, 1).await.unwrap();
    let acme_v1 = keys.seal(ACME, 1, NOTION, TOKEN).await.unwrap();
    let acme_v2 = keys.seal(ACME, 2, GITHUB, TOKEN).await.unwrap();
    let globex = keys.seal(GLOBEX, 1, NOTION, TOKEN).await.unwrap();
    assert_eq!(keys.destroy(ACME, 2).await.unwrap(), 2);
    for (credential, sealed) in [(NOTION, &acme_v1), (GITHUB, &acme_v2)] {
        assert!(matches!(
            keys.open(ACME, credential, sealed, 1).await,
            Err(VaultError::KeyGone(_))
        ));
        // Also for a process that never had the keys in its cache.
        assert!(
            vault(&store, 1)
                .await
                .open(ACME, credential, sealed, 1)
                .await
                .is_err()
        );
    }
    assert_eq!(
        keys.open(GLOBEX, NOTION, &globex, 1)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    assert_eq!(keys.destroy(ACME, 2).await.unwrap(), 0);
}

#[test]
fn sealed_credentials_parse_by_their_version_prefix_only() {
    assert_eq!(Sealed::parse("tsr:v12:abc").map(|s| s.version), Some(12));
    for bad in [
        "tsr:v0:abc",
        "tsr:v:abc",
        "tsr:v1abc",
        "tsr:v-1:abc",
        "vault:v1:abc",
        "tsr:v+1:a",
    ] {
        assert!(Sealed::parse(bad).is_none(), "{bad}");
    }
    // A KEK's row id can never be a person's (version 7) id.
    assert_eq!(kek_id(1).get_version_num(), 15);
    assert_ne!(kek_id(1), kek_id(2));
}

#[test]
fn a_secret_id_is_stable_per_stream_and_differs_between_streams() {
    let notion = format!("{ACME}/credential/notion");
    assert_eq!(secret_id(&notion), secret_id(&notion));
    assert_ne!(
        secret_id(&notion),
        secret_id(&format!("{ACME}/credential/github"))
    );
    assert_ne!(
        secret_id(&notion),
        secret_id(&format!("{GLOBEX}/credential/notion"))
    );
    assert_eq!(secret_id(&notion).get_version_num(), 8);
}

#[tokio::test]
async fn a_secret_sealed_for_one_stream_does_not_open_for_another() {
    let store = MemoryStore::default();
    let keys = vault(&store, 1).await;
    keys.create(ACME, 1).await.unwrap();
    let notion = secret_id(&format!("{ACME}/credential/notion"));
    let github = secret_id(&format!("{ACME}/credential/github"));
    let sealed = keys.seal(ACME, 1, notion, TOKEN).await.unwrap();
    assert_eq!(
        keys.open(ACME, notion, &sealed, 0)
            .await
            .unwrap()
            .as_slice(),
        TOKEN
    );
    assert!(keys.open(ACME, github, &sealed, 0).await.is_err());
}
