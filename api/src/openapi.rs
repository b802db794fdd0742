//! The OpenAPI document, generated from the handlers' annotations and served at `/openapi.json`.

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::oauth::{introspection, metadata, token, userinfo};
use crate::routes::{
    api_keys, audit, catalog, claims, clients, connect, consents, credentials, entitlements,
    federation, federation_auth, health, integrations, invitations, mfa, provider_keys,
    seed_aliases, sessions, tenants, users, vault,
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
        provider_keys::list_tenant_keys,
        provider_keys::put_tenant_key,
        provider_keys::get_tenant_key,
        provider_keys::delete_tenant_key,
        provider_keys::invalidate_tenant_key,
        provider_keys::resolve_key,
        provider_keys::put_platform_key,
        provider_keys::get_platform_key,
        provider_keys::delete_platform_key,
        provider_keys::invalidate_platform_key,
        federation_auth::tenants,
        federation_auth::initiate,
        federation_auth::callback,
        integrations::put_integration,
        integrations::get_integration,
        integrations::delete_integration,
        integrations::put_app,
        integrations::get_app,
        integrations::delete_app,
        connect::connect,
        credentials::store_credential,
        credentials::list_connections,
        credentials::remove_credential,
        credentials::access_credential,
        vault::get_vault,
        vault::rotate,
        vault::rewrap,
        vault::set_minimum,
        vault::destroy_vault,
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
    modifiers(&BearerAuth, &CommonResponses),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// The security schemes: API keys as bearer tokens (the default of every operation) and the
/// OAuth clients' HTTP Basic.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // The OAuth endpoints authenticate clients, not API keys: HTTP Basic with the client's
        // id and secret (a public client names itself in the body instead, at the token
        // endpoint only).
        components.add_security_scheme(
            "client",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The answers every route can give besides its own, added to each operation that does not
/// declare them already, so that the document names every status the server answers (a schema
/// fuzzer, schemathesis, checks this: `tests/tests/e2e/openapi_fuzz.rs`):
/// - 400 where the request carries anything to reject (a path segment that does not parse, a
///   query, a body);
/// - 401 and 403 where an API key is required (the operation does not say `security(())`);
/// - 404 where the path names something (a tenant, a user, a client...);
/// - 413 and 415 where there is a body (over the size limit; not the declared media type);
/// - 503 on the admin API, when the event log cannot be reached.
///
/// The admin API's errors are [`ErrorBody`]s; the OAuth endpoints' bodies are RFC 6749's and
/// say so in their own declarations.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::security::SecurityRequirement;

        for (path, item) in openapi.paths.paths.iter_mut() {
            // The admin API and seed 002's sign-in calls answer `ErrorBody`s.
            let admin = path.starts_with("/v1/") || path.starts_with("/auth/");
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.as_deref().unwrap_or_default();
                let in_path = parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let has_body = operation.request_body.is_some();
                let public = operation.security.as_ref().is_some_and(|requirements| {
                    requirements.contains(&SecurityRequirement::default())
                });
                let mut add = |status: &str, description: &str| {
                    let responses = &mut operation.responses.responses;
                    if !responses.contains_key(status) {
                        responses.insert(status.to_owned(), error_response(admin, description));
                    }
                };
                if in_path || has_body || !parameters.is_empty() {
                    add("400", "the request is malformed or invalid");
                }
                if admin && !public {
                    add("401", "no valid API key");
                    add("403", "the API key lacks the permission");
                }
                if in_path {
                    add("404", "nothing of that name (or not visible to this key)");
                }
                if has_body {
                    add("413", "the body is over the size limit");
                    add("415", "the body is not of the declared media type");
                }
                if admin {
                    add("503", "the event log cannot be reached");
                }
            }
        }
    }
}

fn error_response(
    admin: bool,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new().description(description);
    let response = if admin {
        response.content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
    } else {
        response
    };
    response.build().into()
}
