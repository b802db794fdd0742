//! Row-level security on a real PostgreSQL (a throwaway cluster from `tessera-test-support`, or
//! `TESSERA_TEST_DATABASE_URL`): a query that forgets its tenant filter still sees one tenant.

use sqlx::Row;
use uuid::Uuid;

use crate::store::ReadStore;

const ALPHA: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00a1);
const BETA: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_00b2);

/// Two users of each tenant, written as the projector writes: as the tables' owner.
async fn two_tenants(store: &ReadStore) {
    for (n, tenant) in [ALPHA, ALPHA, BETA, BETA].into_iter().enumerate() {
        sqlx::query(
            "INSERT INTO rm_users (user_id, tenant_id, status, email_verified, roles, \
             has_password, password_temporary, created_at, updated_at) \
             VALUES ($1, $2, 'active', 0, '[]', 0, 0, $3, $3)",
        )
        .bind(Uuid::from_u128(0x1000 + n as u128).to_string())
        .bind(tenant.to_string())
        .bind(n as i64)
        .execute(&store.pool())
        .await
        .unwrap();
    }
}

fn tenants_of(rows: &[sqlx::any::AnyRow]) -> Vec<String> {
    rows.iter()
        .map(|row| row.try_get::<String, _>("tenant_id").unwrap())
        .collect()
}

#[tokio::test]
async fn a_query_that_forgets_its_tenant_filter_sees_only_that_tenants_rows() {
    let db = tessera_test_support::fresh_database();
    let store = ReadStore::open_postgres(&db.url).await.unwrap();
    assert!(
        store.tenant_isolation(),
        "the test cluster's user may create the role"
    );
    two_tenants(&store).await;

    // No `WHERE tenant_id = ...`: the policy filters.
    let forgetful = || sqlx::query("SELECT tenant_id FROM rm_users");
    let alpha = store.tenant_rows(ALPHA, forgetful()).await.unwrap();
    assert_eq!(tenants_of(&alpha), vec![ALPHA.to_string(); 2]);
    let beta = store.tenant_rows(BETA, forgetful()).await.unwrap();
    assert_eq!(tenants_of(&beta), vec![BETA.to_string(); 2]);

    // Asking by another tenant's id through a tenant's scope finds nothing.
    let crossing =
        sqlx::query("SELECT tenant_id FROM rm_users WHERE tenant_id = $1").bind(BETA.to_string());
    assert!(store.tenant_row(ALPHA, crossing).await.unwrap().is_none());

    // The platform's own work, as the owner, sees every tenant; and a pooled connection that
    // served a scoped query is back to the owner afterwards (the role and the tenant were
    // transaction-local).
    for _ in 0..10 {
        let all = forgetful().fetch_all(&store.pool()).await.unwrap();
        assert_eq!(all.len(), 4);
    }
}

#[tokio::test]
async fn a_scoped_transaction_cannot_write_and_a_store_reopened_keeps_the_policies() {
    let db = tessera_test_support::fresh_database();
    let store = ReadStore::open_postgres(&db.url).await.unwrap();
    two_tenants(&store).await;
    // The tenant role reads; it may not change a read model, even its own tenant's rows.
    let write = sqlx::query("DELETE FROM rm_users WHERE tenant_id = $1").bind(ALPHA.to_string());
    assert!(store.tenant_rows(ALPHA, write).await.is_err());

    // A second process opening the same database (the schema is kept) leaves isolation on.
    let again = ReadStore::open_postgres(&db.url).await.unwrap();
    assert!(again.tenant_isolation());
    let rows = again
        .tenant_rows(BETA, sqlx::query("SELECT tenant_id FROM rm_users"))
        .await
        .unwrap();
    assert_eq!(tenants_of(&rows), vec![BETA.to_string(); 2]);
}
