//! Provider keys on the in-memory log with a real vault: a resolution appends exactly one
//! access and a refusal nothing; the platform's key is sealed under the system tenant's vault
//! and is only a fallback; the vault's rewrap moves a key to the newest key version and it
//! still resolves, settings and all.

use std::sync::Arc;

use tessera_domain::provider_key::{Source, Unresolved};
use tessera_event_log::EventLog;
use tessera_event_schemas::events::{AccessedCredential, SigningAlg};
use tessera_event_schemas::{Event, SYSTEM_TENANT_ID, streams};
use uuid::Uuid;

use super::super::tests::{create_acme, meta, vault_service};
use super::*;

const ACME: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00a1);
const GATEWAY: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_2a2a);

struct Fixture {
    log: Arc<dyn EventLog>,
    service: CommandService,
}

async fn fixture() -> Fixture {
    let (service, log) = vault_service().await;
    service.bootstrap(None).await.unwrap();
    create_acme(&service, ACME, Some(SigningAlg::EdDSA)).await;
    Fixture { log, service }
}

fn key(api_key: &str) -> ProviderSecret {
    ProviderSecret {
        api_key: api_key.into(),
        endpoint: None,
        api_version: None,
        deployment_name: None,
    }
}

impl Fixture {
    async fn events(&self, stream: &str) -> Vec<Event> {
        self.log
            .read_stream(stream, 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|recorded| recorded.decode().unwrap())
            .collect()
    }

    async fn resolve(
        &self,
        provider: &str,
        strict: bool,
    ) -> Result<ResolvedProviderKey, ResolveError> {
        self.service
            .resolve_provider_key(meta(), ACME, provider, GATEWAY, strict)
            .await
    }
}

#[tokio::test]
async fn a_resolution_appends_one_access_and_a_refusal_appends_nothing() {
    let f = fixture().await;
    f.service
        .set_provider_key(meta(), ACME, "openai", &key("sk-tenant-key-0001"))
        .await
        .unwrap();
    let resolved = f.resolve("openai", true).await.unwrap();
    assert_eq!(resolved.source, Source::Tenant);
    assert_eq!(resolved.secret.api_key, "sk-tenant-key-0001");
    let accesses = f
        .events(&streams::provider_key_access(ACME, "openai"))
        .await;
    let [Event::CredentialAccessed(access)] = accesses.as_slice() else {
        panic!("{accesses:?}");
    };
    assert_eq!(
        (access.api_key_id, access.name.as_str(), access.source),
        (GATEWAY, "openai", AccessedCredential::TenantProviderKey)
    );

    let head = f.log.head_position().await.unwrap();
    assert!(matches!(
        f.resolve("anthropic", true).await,
        Err(ResolveError::Unresolved(Unresolved::TenantKeyRequired))
    ));
    f.service
        .invalidate_provider_key(meta(), ACME, "openai")
        .await
        .unwrap();
    let after_invalidation = f.log.head_position().await.unwrap();
    assert_eq!(after_invalidation, head + 1);
    assert!(matches!(
        f.resolve("openai", false).await,
        Err(ResolveError::Unresolved(Unresolved::TenantKeyInvalid))
    ));
    assert_eq!(f.log.head_position().await.unwrap(), after_invalidation);
}

#[tokio::test]
async fn the_platforms_key_is_sealed_under_the_system_tenants_vault_and_is_only_a_fallback() {
    let f = fixture().await;
    f.service
        .set_provider_key(
            meta(),
            SYSTEM_TENANT_ID,
            "mistral",
            &key("platform-mistral-key"),
        )
        .await
        .unwrap();
    assert_eq!(f.events(&streams::vault(SYSTEM_TENANT_ID)).await.len(), 1);
    assert!(f.events(&streams::vault(ACME)).await.is_empty());
    let resolved = f.resolve("mistral", false).await.unwrap();
    assert_eq!(
        (resolved.source, resolved.secret.api_key.as_str()),
        (Source::Platform, "platform-mistral-key")
    );
    let accesses = f
        .events(&streams::provider_key_access(ACME, "mistral"))
        .await;
    assert!(matches!(
        accesses.as_slice(),
        [Event::CredentialAccessed(access)] if access.source == AccessedCredential::PlatformProviderKey
    ));
    assert!(matches!(
        f.resolve("mistral", true).await,
        Err(ResolveError::Unresolved(Unresolved::TenantKeyRequired))
    ));
}

#[tokio::test]
async fn the_vaults_rewrap_moves_a_provider_key_to_the_newest_version_and_it_still_resolves() {
    let f = fixture().await;
    let mut azure = key("sk-azure-key-0002");
    azure.endpoint = Some("https://acme.openai.azure.com".into());
    f.service
        .set_provider_key(meta(), ACME, "azure", &azure)
        .await
        .unwrap();
    f.service
        .set_provider_key(meta(), ACME, "openai", &key("sk-tenant-key-0001"))
        .await
        .unwrap();
    let (version, _) = f.service.rotate_vault_key(meta(), ACME).await.unwrap();
    assert_eq!(version, 2);
    f.service
        .remove_provider_key(meta(), ACME, "openai")
        .await
        .unwrap();
    let azure_stream = streams::provider_key(ACME, "azure");
    assert!(
        f.service
            .rewrap_secret(meta(), ACME, &azure_stream)
            .await
            .unwrap()
    );
    assert!(
        !f.service
            .rewrap_secret(meta(), ACME, &azure_stream)
            .await
            .unwrap(),
        "already at the newest version"
    );
    let openai_stream = streams::provider_key(ACME, "openai");
    assert!(
        !f.service
            .rewrap_secret(meta(), ACME, &openai_stream)
            .await
            .unwrap(),
        "a removed key holds no secret"
    );
    let info = f
        .service
        .provider_key(ACME, "azure")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((info.key_version, info.last4.as_str()), (2, "0002"));
    let resolved = f.resolve("azure", true).await.unwrap();
    assert_eq!(resolved.secret.api_key, "sk-azure-key-0002");
    assert_eq!(
        resolved.secret.endpoint.as_deref(),
        Some("https://acme.openai.azure.com")
    );
}
