//! Bootstrap: the system tenant and its first platform administrator key, on an empty log.

use tessera_domain::Aggregate;
use tessera_domain::api_key::{ApiKeyCommand, ApiKeyState};
use tessera_domain::tenant::{NewTenant, TenantState, default_settings};
use tessera_event_log::ExpectedVersion;
use tessera_event_schemas::events::{SigningAlg, TenantKind, TenantStatus};
use tessera_event_schemas::{EventMetadata, SYSTEM_TENANT_ID, streams};

use super::engine::Plan;
use super::{CommandService, IssueApiKey, IssuedApiKey};
use crate::CommandError;
use tessera_crypto as crypto;

impl CommandService {
    /// On an empty log, creates the system tenant (slug `system`, active, plan `platform`) and a
    /// `platform:admin` API key on it, in one atomic append, so that a crash cannot leave a
    /// system tenant without an administrator. Uses `admin_key_plaintext` as the key when given.
    /// On a log that already has events, does nothing and returns `None`, so restarts are
    /// harmless.
    pub async fn bootstrap(
        &self,
        admin_key_plaintext: Option<String>,
    ) -> Result<Option<IssuedApiKey>, CommandError> {
        if self.log.head_position().await? != 0 {
            return Ok(None);
        }
        let meta = EventMetadata::system(format!("bootstrap-{}", self.ids.new_id()));
        let now = self.clock.now();
        let signing_key = self.crypto.generate_signing_key(
            SigningAlg::ES256,
            SYSTEM_TENANT_ID,
            crypto::new_kid(now)?,
            now,
        )?;
        let added_keys = self
            .id_token_keys(&signing_key, SYSTEM_TENANT_ID, now)
            .await?;
        let new = NewTenant {
            tenant_id: SYSTEM_TENANT_ID,
            slug: tessera_domain::validate::SYSTEM_SLUG.to_owned(),
            name: "System".to_owned(),
            plan: "platform".to_owned(),
            kind: TenantKind::Customer,
            domains: Vec::new(),
            settings: default_settings(),
            config_json: "{}".to_owned(),
            sales_owner: None,
            signing_key,
            added_keys,
            now,
            initial_status: Some(TenantStatus::Active),
        };
        let (key, plaintext) = self.prepare_api_key(
            IssueApiKey {
                name: "bootstrap admin".to_owned(),
                scopes: vec!["platform:admin".to_owned()],
                product: None,
                expires_at: None,
                created_by: "bootstrap".to_owned(),
                key_id: None,
                plaintext: admin_key_plaintext,
            },
            now,
        )?;
        let stream = streams::tenant(SYSTEM_TENANT_ID);
        let (new_ref, key_ref, meta, stream_ref) = (&new, &key, &meta, &stream);
        let (created, position) = self
            .run(&stream, move || async move {
                let tenant = self.load::<TenantState>(stream_ref).await?;
                if tenant.state.tenant.is_some() {
                    // Another process bootstrapped between our head check and now.
                    return Ok(Plan::new(false, tenant.position));
                }
                let mut plan = self
                    .plan_create(meta, new_ref, tenant)
                    .await?
                    .with_value(true);
                let events = ApiKeyState::default()
                    .decide(ApiKeyCommand::Issue(Box::new(key_ref.clone())))?;
                let stream = streams::api_key(SYSTEM_TENANT_ID, key_ref.key_id);
                plan.push(self.write(
                    meta,
                    self.clock.now(),
                    stream,
                    ExpectedVersion::NoStream,
                    SYSTEM_TENANT_ID,
                    events,
                ));
                Ok(plan)
            })
            .await?;
        Ok(created.then(|| IssuedApiKey {
            key_id: key.key_id,
            prefix: key.prefix.clone(),
            plaintext,
            position,
        }))
    }
}
