//! One representative value per (event type, schema version): the source of the golden
//! fixtures in `event-schemas/fixtures/`. Once a fixture is blessed, its sample must not change.

use uuid::Uuid;

use super::*;
use crate::primitives::{Date, Hash32, Timestamp};

/// A sample for each current event type, keyed by `(type, version)`.
pub fn current() -> Vec<Event> {
    let key = SigningKeyV1 {
        kid: "k-2026-11-23-a".into(),
        alg: SigningAlg::ES256,
        public_jwk: PublicJwkV1::Ec {
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
        },
        sealed_private_key: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16].into(),
        created_at: Timestamp::from_micros(1_795_000_000_000_000),
    };
    let settings = TenantSettingsV1 {
        session_timeout_minutes: 60,
        max_sessions_per_user: 5,
        require_mfa: true,
        password_policy: PasswordPolicyV1 {
            min_length: 12,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_special_chars: false,
            password_history_count: 5,
            max_age_days: 90,
        },
        lockout_policy: LockoutPolicyV1 {
            max_attempts: 5,
            lockout_duration_minutes: 15,
            reset_after_minutes: 60,
        },
        allowed_email_domains: vec!["acme.example".into()],
    };
    let tenant_id = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    vec![
        Event::TenantCreated(TenantCreatedV1 {
            tenant_id,
            slug: "acme-corp".into(),
            name: "Acme Corporation".into(),
            plan: "enterprise".into(),
            kind: TenantKind::Customer,
            status: TenantStatus::Trial,
            domains: vec!["acme.example".into()],
            settings: settings.clone(),
            config_json: r#"{"theme":"dark"}"#.into(),
            sales_owner: Some("sam@tessera.example".into()),
            trial_ends_at: Some(Timestamp::from_micros(1_796_000_000_000_000)),
            signing_key: key.clone(),
        }),
        Event::TenantUpdated(TenantUpdatedV1 {
            name: Some("Acme Corp".into()),
            domains: Some(vec!["acme.example".into(), "acme.test".into()]),
            plan: None,
            config_json: None,
            sales_owner: None,
        }),
        Event::TenantSettingsChanged(TenantSettingsChangedV1 { settings }),
        Event::TenantActivated(TenantActivatedV1 {
            previous_status: TenantStatus::Trial,
            plan: "enterprise".into(),
            contract_start: Date::parse("2026-12-01"),
            contract_end: Date::parse("2027-11-30"),
            erp_customer_id: Some("ERP-1001".into()),
        }),
        Event::TenantCancelled(TenantCancelledV1 {
            reason: "budget".into(),
            effective_at: Some(Timestamp::from_micros(1_797_000_000_000_000)),
        }),
        Event::TenantFrozen(TenantFrozenV1 {
            reason: "scheduled cancellation".into(),
        }),
        Event::TenantSuspended(TenantSuspendedV1 {
            reason: Some("abuse report".into()),
        }),
        Event::TenantReactivated(TenantReactivatedV1 {}),
        Event::TenantArchived(TenantArchivedV1 {
            previous_status: TenantStatus::Frozen,
        }),
        Event::SigningKeyRotated(SigningKeyRotatedV1 {
            key: SigningKeyV1 {
                kid: "k-2026-11-24-b".into(),
                alg: SigningAlg::EdDSA,
                public_jwk: PublicJwkV1::Okp {
                    x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
                },
                ..key
            },
            previous_kid: "k-2026-11-23-a".into(),
        }),
        Event::SigningKeyRetired(SigningKeyRetiredV1 {
            kid: "k-2026-11-23-a".into(),
        }),
        Event::SigningKeyAdded(SigningKeyAddedV1 {
            key: SigningKeyV1 {
                kid: "k-2026-12-07-r".into(),
                alg: SigningAlg::RS256,
                public_jwk: PublicJwkV1::Rsa {
                    n: "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl".into(),
                    e: "AQAB".into(),
                },
                sealed_private_key: vec![37; 48].into(),
                created_at: Timestamp::from_micros(1_796_000_000_000_000),
            },
        }),
        Event::ApiKeyIssued(ApiKeyIssuedV1 {
            key_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0002),
            name: "CI pipeline".into(),
            prefix: "tsr_AbCdEfGh".into(),
            secret_hash: Hash32([7; 32]).into(),
            scopes: vec!["tenants:read".into()],
            product: Some("billing".into()),
            expires_at: Some(Timestamp::from_micros(1_798_000_000_000_000)),
            created_by: "platform-admin".into(),
        }),
        Event::ApiKeyRevoked(ApiKeyRevokedV1 {
            reason: Some("rotated".into()),
        }),
        Event::ApiKeyUsed(ApiKeyUsedV1 {
            uses: 1234,
            first_used_at: Timestamp::from_micros(1_795_000_100_000_000),
            last_used_at: Timestamp::from_micros(1_795_000_160_000_000),
        }),
        Event::OAuthClientRegistered(OAuthClientRegisteredV2 {
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            name: "Billing worker".into(),
            client_type: ClientType::Confidential,
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec!["https://billing.acme.example/callback".into()],
            allowed_scopes: vec!["invoices:read".into(), "invoices:write".into()],
            access_token_ttl_secs: 3600,
            secret_hash: Some(Hash32([9; 32])).into(),
            created_by: "platform-admin".into(),
            oidc: OidcClientSettingsV1 {
                post_logout_redirect_uris: vec!["https://billing.acme.example/bye".into()],
                require_consent: false,
                refresh_token_ttl_secs: 2_592_000,
                refresh_token_idle_secs: 1_209_600,
                refresh_without_offline_access: true,
                id_token_signed_response_alg: SigningAlg::ES256,
                backchannel_logout_uri: Some("https://billing.acme.example/logout".into()),
            },
        }),
        Event::OAuthClientUpdated(OAuthClientUpdatedV2 {
            name: Some("Billing worker v2".into()),
            grant_types: None,
            redirect_uris: Some(vec![]),
            allowed_scopes: Some(vec!["invoices:read".into()]),
            access_token_ttl_secs: Some(900),
            post_logout_redirect_uris: Some(vec![]),
            require_consent: Some(true),
            refresh_token_ttl_secs: Some(86_400),
            refresh_token_idle_secs: Some(3_600),
            refresh_without_offline_access: Some(false),
            id_token_signed_response_alg: Some(SigningAlg::RS256),
            backchannel_logout_uri: Some(None),
        }),
        Event::OAuthClientSecretRegenerated(OAuthClientSecretRegeneratedV1 {
            secret_hash: Hash32([10; 32]).into(),
        }),
        Event::OAuthClientDeactivated(OAuthClientDeactivatedV1 {
            reason: Some("decommissioned".into()),
        }),
        Event::TokenIssuedV1(TokenIssuedV1 {
            jti: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003),
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            grant_type: "client_credentials".into(),
            scopes: vec!["invoices:read".into()],
            audience: vec!["https://id.acme.example/t/acme-corp".into()],
            kid: "k-2026-11-23-b".into(),
            issued_at: Timestamp::from_micros(1_795_000_200_000_000),
            expires_at: Timestamp::from_micros(1_795_003_800_000_000),
            token_hash: Hash32([11; 32]).into(),
        }),
        Event::TokenIssued(TokenIssuedV2 {
            jti: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            grant_type: GrantType::ClientCredentials,
            scopes: vec!["invoices:read".into()],
            audience: Vec::new(),
            kid: "k-2026-11-23-b".into(),
            ttl_secs: 3600,
        }),
        Event::TokenRevoked(TokenRevokedV1 {
            jti: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0003),
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            expires_at: Timestamp::from_micros(1_795_003_800_000_000),
        }),
        Event::ReservationClaimed(ReservationClaimedV1 {
            kind: ReservationKind::TenantSlug,
            value: "acme-corp".into(),
            owner: tenant_id,
        }),
        Event::ReservationReleased(ReservationReleasedV1 { owner: tenant_id }),
        Event::AuditRecorded(AuditRecordedV1 {
            action: "invoice.paid".into(),
            project_id: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0004)),
            actor_id: Some("user-42".into()),
            actor_name: Some("Ada Lovelace".into()),
            actor_type: Some("user".into()),
            target_id: Some("inv-1001".into()),
            target_type: Some("invoice".into()),
            target_name: Some("Invoice 1001".into()),
            product: Some("billing".into()),
            metadata_json: r#"{"amount":1200,"currency":"EUR"}"#.into(),
        }),
        Event::UserCreated(UserCreatedV1 {
            user_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            email: vec![21; 40].into(),
            email_hash: Hash32([22; 32]).into(),
            email_verified: false,
            name: Some(vec![23; 36]).into(),
            given_name: Some(vec![24; 31]).into(),
            family_name: Some(vec![29; 33]).into(),
            roles: vec!["user".into(), "editor".into()],
        }),
        Event::UserUpdated(UserUpdatedV1 {
            name: Some(vec![25; 36]).into(),
            given_name: Some(vec![30; 34]).into(),
            family_name: Some(vec![26; 37]).into(),
            roles: vec!["tenant:admin".into()],
        }),
        Event::UserEmailChanged(UserEmailChangedV1 {
            email: vec![27; 44].into(),
            email_hash: Hash32([28; 32]).into(),
        }),
        Event::UserDisabled(UserDisabledV1 {}),
        Event::UserEnabled(UserEnabledV1 {}),
        Event::UserPasswordSet(UserPasswordSetV1 {
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_owned().into(),
            temporary: true,
            set_at: Timestamp::from_micros(1_795_000_300_000_000),
        }),
        Event::UserErased(UserErasedV1 {}),
        Event::SignInSucceeded(SignInSucceededV1 {
            method: SignInMethod::Password,
            session_id: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006)),
            pending_step: None,
            at: Timestamp::from_micros(1_795_000_400_000_000),
        }),
        Event::SignInFailed(SignInFailedV1 {
            method: SignInMethod::Password,
            reason: SignInFailure::WrongPassword,
            at: Timestamp::from_micros(1_795_000_500_000_000),
            locked_until: Some(Timestamp::from_micros(1_795_001_400_000_000)),
        }),
        Event::SignInUnlocked(SignInUnlockedV1 {}),
        Event::SessionStarted(SessionStartedV1 {
            session_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006),
            user_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005),
            token_hash: Hash32([31; 32]).into(),
            amr: vec!["pwd".into()],
            auth_time: Timestamp::from_micros(1_795_000_400_000_000),
        }),
        Event::SessionSeen(SessionSeenV1 {
            sessions: vec![SessionSeenAtV1 {
                session_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006),
                last_seen_at: Timestamp::from_micros(1_795_000_460_000_000),
            }],
        }),
        Event::SessionEnded(SessionEndedV1 {
            session_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0006),
            reason: SessionEndReason::SignedOut,
        }),
        Event::TotpEnrollmentStarted(TotpEnrollmentStartedV1 {
            sealed_secret: vec![31; 48].into(),
        }),
        Event::TotpEnrolled(TotpEnrolledV1 { step: 59_833_334 }),
        Event::TotpUsed(TotpUsedV1 { step: 59_833_340 }),
        Event::TotpRemoved(TotpRemovedV1 {}),
        Event::RecoveryCodesGenerated(RecoveryCodesGeneratedV1 {
            code_hashes: vec![Hash32([32; 32]), Hash32([33; 32])].into(),
        }),
        Event::RecoveryCodeUsed(RecoveryCodeUsedV1 { index: 1 }),
        Event::RecoveryCodesRevoked(RecoveryCodesRevokedV1 {}),
        Event::PasskeyRegistered(PasskeyRegisteredV1 {
            credential_id: vec![34; 16],
            public_key: vec![35; 77],
            counter: 0,
            name: vec![36; 40].into(),
            user_verified: true,
            backup_eligible: true,
            backup_state: false,
            user_verification: Requirement::Required,
            attestation_format: "none".into(),
        }),
        Event::PasskeyUsed(PasskeyUsedV1 {
            credential_id: vec![34; 16],
            counter: 3,
            backup_state: true,
        }),
        Event::PasskeyRemoved(PasskeyRemovedV1 {
            credential_id: vec![34; 16],
        }),
        Event::MfaReset(MfaResetV1 {}),
        Event::WebauthnPolicyChanged(WebauthnPolicyChangedV1 {
            policy: WebauthnPolicyV1 {
                enabled: true,
                attestation_preference: AttestationPreference::Direct,
                user_verification: Requirement::Required,
                resident_key: Requirement::Preferred,
            },
        }),
        Event::AuthorizationCodeIssued(AuthorizationCodeIssuedV1 {
            code_hash: Hash32([38; 32]).into(),
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            user_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0b0b),
            session_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_5e55),
            redirect_uri: "https://billing.acme.example/callback".into(),
            scopes: vec!["openid".into(), "profile".into(), "offline_access".into()],
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            auth_time: Timestamp::from_micros(1_796_000_100_000_000),
            amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
            acr: "2".into(),
            expires_at: Timestamp::from_micros(1_796_000_160_000_000),
        }),
        Event::AuthorizationCodeRedeemed(AuthorizationCodeRedeemedV1 {
            jti: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0a71),
            access_token_ttl_secs: 3600,
            refresh_family: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_fa01)),
        }),
        Event::AuthorizationCodeReused(AuthorizationCodeReusedV1 {}),
        Event::ConsentGranted(ConsentGrantedV1 {
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            scopes: vec!["openid".into(), "email".into()],
        }),
        Event::ConsentRevoked(ConsentRevokedV1 {
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
        }),
        Event::RefreshTokenIssued(RefreshTokenIssuedV1 {
            client_id: "0193a000-0000-7000-8000-00000000c11e".into(),
            user_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0b0b),
            session_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_5e55),
            scopes: vec!["openid".into(), "offline_access".into()],
            offline: true,
            auth_time: Timestamp::from_micros(1_796_000_100_000_000),
            amr: vec!["pwd".into()],
            acr: "1".into(),
            token_hash: Hash32([39; 32]).into(),
            expires_at: Timestamp::from_micros(1_798_592_100_000_000),
            idle_secs: 1_209_600,
        }),
        Event::RefreshTokenRotated(RefreshTokenRotatedV1 {
            generation: 1,
            token_hash: Hash32([40; 32]).into(),
            jti: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0a72),
        }),
        Event::RefreshTokenRevoked(RefreshTokenRevokedV1 {
            reason: RefreshRevocationReason::ReuseDetected,
        }),
        Event::UserPasswordResetRequested(UserPasswordResetRequestedV1 {
            link_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_1111),
            token_hash: Hash32([41; 32]).into(),
            expires_at: Timestamp::from_micros(1_796_001_800_000_000),
        }),
        Event::UserEmailVerificationRequested(UserEmailVerificationRequestedV1 {
            link_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_1112),
            token_hash: Hash32([42; 32]).into(),
            expires_at: Timestamp::from_micros(1_796_086_400_000_000),
        }),
        Event::UserEmailVerified(UserEmailVerifiedV1 {
            link_id: Some(Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_1112)),
        }),
        Event::TenantAdminInviteFailed(TenantAdminInviteFailedV1 {
            reason: "the address's domain is not among the tenant's allowed email domains".into(),
        }),
        Event::InvitationCreated(InvitationCreatedV1 {
            email: vec![43; 45].into(),
            email_hash: Hash32([44; 32]).into(),
            name: Some(vec![45; 38]).into(),
            roles: vec!["user".into(), "editor".into()],
            message: Some(vec![46; 48]).into(),
            token_hash: Hash32([47; 32]).into(),
            expires_at: Timestamp::from_micros(1_796_604_800_000_000),
        }),
        Event::InvitationResent(InvitationResentV1 {
            token_hash: Hash32([48; 32]).into(),
            expires_at: Timestamp::from_micros(1_796_691_200_000_000),
        }),
        Event::InvitationAccepted(InvitationAcceptedV1 {
            user_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0b0b),
            created_user: true,
        }),
        Event::InvitationRevoked(InvitationRevokedV1 {}),
        Event::EmailQueued(EmailQueuedV1 {
            template: EmailTemplate::Invitation,
            person_id: Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_1a1a),
            recipient: vec![49; 45].into(),
            name: Some(vec![50; 38]).into(),
            link: vec![51; 120].into(),
            link_expires_at: Timestamp::from_micros(1_796_604_800_000_000),
            message: Some(vec![52; 48]).into(),
        }),
        Event::EmailSent(EmailSentV1 {
            attempt: 2,
            message_id: "<0193a000-0000-7000-8000-00000000e1a1@id.acme.example>".into(),
        }),
        Event::EmailFailed(EmailFailedV1 {
            attempt: 1,
            reason: "connection refused".into(),
            permanent: false,
            retry_at: Some(Timestamp::from_micros(1_796_000_130_000_000)),
        }),
        Event::ProductDefined(ProductDefinedV1 {
            name: "Compliance Suite".into(),
            description: "Audit-ready compliance reports".into(),
            plans_required: vec!["business".into(), "enterprise".into()],
            demo_url: Some("https://demo.tessera.example/compliance".into()),
            supports_trial: true,
        }),
        Event::ProductUpdated(ProductUpdatedV1 {
            name: "Compliance Suite".into(),
            description: "Audit-ready compliance reports, monthly".into(),
            plans_required: vec!["enterprise".into()],
            demo_url: None,
            supports_trial: false,
        }),
        Event::ProductRemoved(ProductRemovedV1 {}),
        Event::ProductRequested(ProductRequestedV1 {
            requested_by: Some("it-admin".into()),
        }),
        Event::EntitlementGranted(EntitlementGrantedV1 {
            enabled: true,
            config_json: r#"{"seats":25}"#.into(),
            expires_at: Some(Timestamp::from_micros(1_797_000_000_000_000)),
        }),
        Event::EntitlementTrialStarted(EntitlementTrialStartedV1 {
            expires_at: Timestamp::from_micros(1_796_209_600_000_000),
        }),
        Event::EntitlementRevoked(EntitlementRevokedV1 {}),
        Event::EntitlementExpired(EntitlementExpiredV1 {
            expires_at: Timestamp::from_micros(1_796_209_600_000_000),
        }),
        Event::OAuthClientTokenClaimsSet(OAuthClientTokenClaimsSetV1 {
            tenant_claims: TenantClaimsChoice::Only(vec!["tenant_id".into(), "products".into()]),
        }),
    ]
}
