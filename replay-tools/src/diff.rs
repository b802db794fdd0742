//! `diff`: what changed in a tenant between two moments, computed from two
//! [`TenantSnapshot`]s (see [`crate::asof`]).
//!
//! Tenant fields (settings included) and client fields are compared through their JSON form,
//! flattened to dotted paths (`settings.password_policy.min_length`). Keys are reported added
//! and status-changed (retired ones also listed apart); clients added, changed and
//! deactivated; API keys issued and revoked; tokens issued, revoked, and expired (valid at the
//! first moment, neither revoked nor valid at the second).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::asof::{AsOfMoment, AsOfView, TenantSnapshot};
use crate::source::Bound;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Value,
    pub to: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyChange {
    pub kid: String,
    pub from: Option<&'static str>,
    pub to: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientChange {
    pub client_id: String,
    pub changes: Vec<FieldChange>,
}

/// What `diff --json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantDiff {
    pub tenant_id: Uuid,
    pub from: Option<AsOfMoment>,
    pub to: Option<AsOfMoment>,
    pub existed_before: bool,
    pub exists_after: bool,
    pub tenant_changes: Vec<FieldChange>,
    pub keys_added: Vec<String>,
    pub keys_retired: Vec<String>,
    pub key_status_changes: Vec<KeyChange>,
    pub clients_added: Vec<String>,
    pub clients_changed: Vec<ClientChange>,
    pub clients_deactivated: Vec<String>,
    pub api_keys_issued: Vec<Uuid>,
    pub api_keys_revoked: Vec<Uuid>,
    pub tokens_issued: Vec<Uuid>,
    pub tokens_revoked: Vec<Uuid>,
    pub tokens_expired: Vec<Uuid>,
}

impl TenantDiff {
    pub fn is_empty(&self) -> bool {
        self.existed_before == self.exists_after
            && self.tenant_changes.is_empty()
            && self.key_status_changes.is_empty()
            && self.clients_added.is_empty()
            && self.clients_changed.is_empty()
            && self.clients_deactivated.is_empty()
            && self.api_keys_issued.is_empty()
            && self.api_keys_revoked.is_empty()
            && self.tokens_issued.is_empty()
            && self.tokens_revoked.is_empty()
            && self.tokens_expired.is_empty()
    }
}

/// Flattens nested objects to `a.b.c` keys; arrays and scalars are leaves.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, value, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

fn field_changes<T: Serialize>(from: Option<&T>, to: Option<&T>) -> Vec<FieldChange> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    if let Some(from) = from {
        flatten("", &serde_json::to_value(from).unwrap_or_default(), &mut a);
    }
    if let Some(to) = to {
        flatten("", &serde_json::to_value(to).unwrap_or_default(), &mut b);
    }
    let mut fields: Vec<&String> = a.keys().chain(b.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter_map(|field| {
            let from = a.get(field).cloned().unwrap_or(Value::Null);
            let to = b.get(field).cloned().unwrap_or(Value::Null);
            (from != to).then(|| FieldChange {
                field: field.clone(),
                from,
                to,
            })
        })
        .collect()
}

/// Compares the tenant at `from_bound` with the tenant at `to_bound`.
pub fn diff(
    from: &TenantSnapshot,
    from_bound: Bound,
    to: &TenantSnapshot,
    to_bound: Bound,
) -> TenantDiff {
    let a: Option<AsOfView> = from.view(from_bound);
    let b: Option<AsOfView> = to.view(to_bound);
    let tenant_changes =
        field_changes(a.as_ref().map(|v| &v.tenant), b.as_ref().map(|v| &v.tenant));

    let before_keys: BTreeMap<&str, &'static str> = a
        .iter()
        .flat_map(|v| v.keys.iter().map(|k| (k.kid.as_str(), k.status)))
        .collect();
    let mut keys_added = Vec::new();
    let mut keys_retired = Vec::new();
    let mut key_status_changes = Vec::new();
    for key in b.iter().flat_map(|v| v.keys.iter()) {
        let before = before_keys.get(key.kid.as_str()).copied();
        if before.is_none() {
            keys_added.push(key.kid.clone());
        }
        if before != Some(key.status) {
            if key.status == "retired" {
                keys_retired.push(key.kid.clone());
            }
            key_status_changes.push(KeyChange {
                kid: key.kid.clone(),
                from: before,
                to: key.status,
            });
        }
    }

    let before_clients: BTreeMap<&str, _> = a
        .iter()
        .flat_map(|v| v.clients.iter().map(|c| (c.client_id.as_str(), c)))
        .collect();
    let mut clients_added = Vec::new();
    let mut clients_changed = Vec::new();
    let mut clients_deactivated = Vec::new();
    for client in b.iter().flat_map(|v| v.clients.iter()) {
        match before_clients.get(client.client_id.as_str()) {
            None => clients_added.push(client.client_id.clone()),
            Some(before) => {
                let changes = field_changes(Some(*before), Some(client));
                if !changes.is_empty() {
                    clients_changed.push(ClientChange {
                        client_id: client.client_id.clone(),
                        changes,
                    });
                }
            }
        }
        let was_active = before_clients
            .get(client.client_id.as_str())
            .is_none_or(|before| before.active);
        if was_active && !client.active {
            clients_deactivated.push(client.client_id.clone());
        }
    }

    let mut api_keys_issued = Vec::new();
    let mut api_keys_revoked = Vec::new();
    for (id, state) in &to.api_keys {
        let Some(key) = &state.key else { continue };
        let before = from.api_keys.get(id).and_then(|s| s.key.as_ref());
        if before.is_none() {
            api_keys_issued.push(*id);
        }
        if key.revoked && !before.is_some_and(|k| k.revoked) {
            api_keys_revoked.push(*id);
        }
    }

    let from_moment = from.moment(from_bound);
    let to_moment = to.moment(to_bound);
    let mut tokens_issued = Vec::new();
    let mut tokens_revoked = Vec::new();
    let mut tokens_expired = Vec::new();
    for (jti, token) in &to.tokens {
        let before = from.tokens.get(jti);
        if before.is_none() {
            tokens_issued.push(*jti);
        }
        if token.revoked && !before.is_some_and(|t| t.revoked) {
            tokens_revoked.push(*jti);
        }
        let valid_before = before.is_some_and(|t| !t.revoked && t.issued.expires_at > from_moment);
        if valid_before && !token.revoked && token.issued.expires_at <= to_moment {
            tokens_expired.push(*jti);
        }
    }

    TenantDiff {
        tenant_id: to.tenant_id,
        from: a.as_ref().map(|v| v.as_of.clone()),
        to: b.as_ref().map(|v| v.as_of.clone()),
        existed_before: a.is_some(),
        exists_after: b.is_some(),
        tenant_changes,
        keys_added,
        keys_retired,
        key_status_changes,
        clients_added,
        clients_changed,
        clients_deactivated,
        api_keys_issued,
        api_keys_revoked,
        tokens_issued,
        tokens_revoked,
        tokens_expired,
    }
}

impl TenantDiff {
    /// The human-readable report.
    pub fn render(&self, from: Bound, to: Bound) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "tenant {} from {from} to {to}", self.tenant_id);
        match (self.existed_before, self.exists_after) {
            (false, true) => out.push_str("  tenant created in between\n"),
            (false, false) => out.push_str("  tenant exists at neither moment\n"),
            (true, false) => out.push_str("  tenant no longer found\n"),
            (true, true) => {}
        }
        if self.is_empty() {
            out.push_str("  no changes\n");
            return out;
        }
        for change in &self.tenant_changes {
            let _ = writeln!(out, "  {}: {} -> {}", change.field, change.from, change.to);
        }
        for change in &self.key_status_changes {
            let _ = writeln!(
                out,
                "  key {}: {} -> {}",
                change.kid,
                change.from.unwrap_or("(none)"),
                change.to
            );
        }
        for id in &self.clients_added {
            let _ = writeln!(out, "  client added: {id}");
        }
        for client in &self.clients_changed {
            for change in &client.changes {
                let _ = writeln!(
                    out,
                    "  client {} {}: {} -> {}",
                    client.client_id, change.field, change.from, change.to
                );
            }
        }
        for id in &self.clients_deactivated {
            let _ = writeln!(out, "  client deactivated: {id}");
        }
        for id in &self.api_keys_issued {
            let _ = writeln!(out, "  api key issued: {id}");
        }
        for id in &self.api_keys_revoked {
            let _ = writeln!(out, "  api key revoked: {id}");
        }
        let _ = writeln!(
            out,
            "  tokens: {} issued, {} revoked, {} expired",
            self.tokens_issued.len(),
            self.tokens_revoked.len(),
            self.tokens_expired.len()
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_fields_are_compared_by_dotted_path() {
        let from = json!({"name": "a", "settings": {"mfa": false, "policy": {"min": 8}}});
        let to = json!({"name": "a", "settings": {"mfa": true, "policy": {"min": 12}}});
        let changes = field_changes(Some(&from), Some(&to));
        let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["settings.mfa", "settings.policy.min"]);
        assert_eq!(changes[1].from, json!(8));
        assert_eq!(changes[1].to, json!(12));
        assert!(field_changes(Some(&from), Some(&from)).is_empty());
    }
}
