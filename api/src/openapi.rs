//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::oauth::{introspection, metadata, token, userinfo};
use crate::routes::{
    api_keys, audit, catalog, claims, clients, consents, entitlements, federation, federation_auth,
    health, invitations, mfa, seed_aliases, sessions, tenants, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera", description = "Multi-tenant identity platform: admin API and per-tenant OAuth 2.0 authorization servers."),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        tenants::create_tenant,
        tenants::list_tenants,
        tenants::get_tenant,
        tenants::get_tenant_by_slug,
        tenants::update_tenant,
        tenants::archive_tenant,
        tenants::activate_tenant,
        tenants::cancel_tenant,
        tenants::suspend_tenant,
        tenants::reactivate_tenant,
        tenants::get_settings,
        tenants::put_settings,
        tenants::list_keys,
        tenants::rotate_key,
        tenants::retire_key,
        api_keys::create_api_key,
        api_keys::list_api_keys,
        api_keys::get_api_key,
        api_keys::revoke_api_key,
        api_keys::api_key_usage,
        api_keys::verify_api_key,
        clients::register_client,
        clients::list_clients,
        clients::get_client,
        clients::update_client,
        clients::deactivate_client,
        clients::regenerate_secret,
        users::create_user,
        users::list_users,
        users::get_user,
        users::update_user,
        users::erase_user,
        users::disable_user,
        users::enable_user,
        users::send_verification,
        users::set_password,
        invitations::create_invitation,
        invitations::list_invitations,
        invitations::get_invitation,
        invitations::resend_invitation,
        invitations::bulk_resend,
        invitations::revoke_invitation,
        sessions::list_sessions,
        sessions::end_user_sessions,
        sessions::end_session,
        sessions::unlock_user,
        consents::list_consents,
        consents::revoke_consent,
        consents::revoke_all_consents,
        mfa::get_mfa,
        mfa::reset_mfa,
        mfa::get_webauthn_policy,
        mfa::put_webauthn_policy,
        audit::list_audit,
        audit::append_audit,
        catalog::list_catalog,
        catalog::put_product,
        catalog::remove_product,
        catalog::request_product,
        catalog::request_trial,
        entitlements::list_entitlements_by_query,
        entitlements::list_entitlements,
        entitlements::grant_entitlement,
        entitlements::revoke_entitlement,
        federation::put_default,
        federation::get_default,
        federation::delete_default,
        federation::put_alias,
        federation::get_alias,
        federation::delete_alias,
        federation_auth::tenants,
        federation_auth::initiate,
        federation_auth::callback,
        claims::resolve_claims,
        claims::get_token_claims,
        claims::put_token_claims,
        seed_aliases::list_api_keys_by_query,
        seed_aliases::create_api_key_by_body,
        seed_aliases::revoke_api_key_by_id,
        metadata::openid_configuration,
        metadata::authorization_server_metadata,
        metadata::authorization_server_metadata_under_issuer,
        metadata::jwks,
        token::token,
        introspection::introspect,
        introspection::revoke,
        userinfo::userinfo_get,
        userinfo::userinfo_post,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
