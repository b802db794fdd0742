//! `export`: an evidence export of a tenant's events that a third party can re-verify.
//!
//! Each [`ExportRecord`] carries the whole envelope, including `prev_hash`, `hash` and
//! `log_hash` in lowercase hex, the payload as JSON (`data`, for reading) and as the hex of the
//! stored bytes (`payload_hex`, for hashing), and `recorded_at_micros` (the integer the hash
//! covers). Re-verifying one event needs nothing but the record:
//! `hash == event_hash(envelope, payload)` (see `tessera_event_schemas::hash` for the byte
//! layout); [`ExportRecord::envelope`] rebuilds both from a record.
//!
//! Formats: JSON Lines (one record per line) and CSV (RFC 4180, header row [`CSV_HEADER`],
//! `data` as JSON text). In CSV an absent optional field is an empty unquoted cell, while a
//! present string is always quoted, so an empty string (`""`) stays distinct from "absent".

use serde::{Deserialize, Serialize};
use tessera_event_schemas::{Actor, ActorKind, Envelope, Hash32, RecordedEvent, Timestamp};
use uuid::Uuid;

/// One exported event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub global_position: u64,
    pub stream_id: String,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: String,
    pub recorded_at_micros: i64,
    pub actor_kind: String,
    pub actor_id: String,
    pub actor_name: Option<String>,
    pub correlation_id: String,
    pub causation_id: Option<Uuid>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    pub log_hash: String,
    pub payload_hex: String,
    /// The payload as JSON; null when this build cannot decode it (the hex still verifies).
    pub data: serde_json::Value,
}

/// The CSV columns, in order.
pub const CSV_HEADER: &str = "global_position,stream_id,stream_version,event_id,tenant_id,event_type,schema_version,recorded_at,recorded_at_micros,actor_kind,actor_id,actor_name,correlation_id,causation_id,source_ip,user_agent,prev_hash,hash,log_hash,payload_hex,data";

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(HEX[(byte >> 4) as usize] as char);
        out.push(HEX[(byte & 0xf) as usize] as char);
    }
    out
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl ExportRecord {
    pub fn new(recorded: &RecordedEvent) -> Self {
        let e = &recorded.envelope;
        Self {
            global_position: e.global_position,
            stream_id: e.stream_id.clone(),
            stream_version: e.stream_version,
            event_id: e.event_id,
            tenant_id: e.tenant_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            recorded_at: e.recorded_at.to_rfc3339(),
            recorded_at_micros: e.recorded_at.as_micros(),
            actor_kind: e.actor.kind.as_str().to_owned(),
            actor_id: e.actor.id.clone(),
            actor_name: e.actor.name.clone(),
            correlation_id: e.correlation_id.clone(),
            causation_id: e.causation_id,
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            prev_hash: e.prev_hash.to_hex(),
            hash: e.hash.to_hex(),
            log_hash: e.log_hash.to_hex(),
            payload_hex: to_hex(&recorded.payload),
            data: recorded
                .decode()
                .map(|event| event.data_json())
                .unwrap_or(serde_json::Value::Null),
        }
    }

    /// The envelope and payload bytes as stored, rebuilt from the record alone; `None` if a
    /// field is malformed.
    pub fn envelope(&self) -> Option<(Envelope, Vec<u8>)> {
        let envelope = Envelope {
            event_id: self.event_id,
            stream_id: self.stream_id.clone(),
            stream_version: self.stream_version,
            global_position: self.global_position,
            tenant_id: self.tenant_id,
            event_type: self.event_type.clone(),
            schema_version: self.schema_version,
            recorded_at: Timestamp::from_micros(self.recorded_at_micros),
            actor: Actor {
                kind: ActorKind::parse(&self.actor_kind)?,
                id: self.actor_id.clone(),
                name: self.actor_name.clone(),
            },
            correlation_id: self.correlation_id.clone(),
            causation_id: self.causation_id,
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            prev_hash: Hash32::from_hex(&self.prev_hash)?,
            hash: Hash32::from_hex(&self.hash)?,
            log_hash: Hash32::from_hex(&self.log_hash)?,
        };
        Some((envelope, from_hex(&self.payload_hex)?))
    }

    /// One CSV row (no line terminator).
    pub fn to_csv_row(&self) -> String {
        fn quoted(text: &str) -> String {
            format!("\"{}\"", text.replace('"', "\"\""))
        }
        fn optional(text: Option<&str>) -> String {
            text.map(quoted).unwrap_or_default()
        }
        [
            self.global_position.to_string(),
            quoted(&self.stream_id),
            self.stream_version.to_string(),
            self.event_id.to_string(),
            self.tenant_id.to_string(),
            quoted(&self.event_type),
            self.schema_version.to_string(),
            self.recorded_at.clone(),
            self.recorded_at_micros.to_string(),
            quoted(&self.actor_kind),
            quoted(&self.actor_id),
            optional(self.actor_name.as_deref()),
            quoted(&self.correlation_id),
            self.causation_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            optional(self.source_ip.as_deref()),
            optional(self.user_agent.as_deref()),
            self.prev_hash.clone(),
            self.hash.clone(),
            self.log_hash.clone(),
            self.payload_hex.clone(),
            quoted(&self.data.to_string()),
        ]
        .join(",")
    }
}

/// Output format of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(format!("unknown format {other:?}: jsonl or csv")),
        }
    }
}

/// A CSV cell as read back: `None` for an empty unquoted cell.
pub type CsvCell = Option<String>;

/// Splits CSV text (as [`ExportRecord::to_csv_row`] writes it) into rows of cells, keeping
/// quoted-empty apart from absent. For re-verification tooling and tests.
pub fn parse_csv(text: &str) -> Vec<Vec<CsvCell>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut was_quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut pending = false;
    while let Some(c) = chars.next() {
        pending = true;
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_quotes = true;
                was_quoted = true;
            }
            ',' => {
                row.push((was_quoted || !cell.is_empty()).then(|| std::mem::take(&mut cell)));
                was_quoted = false;
            }
            '\r' => {}
            '\n' => {
                row.push((was_quoted || !cell.is_empty()).then(|| std::mem::take(&mut cell)));
                was_quoted = false;
                rows.push(std::mem::take(&mut row));
                pending = false;
            }
            other => cell.push(other),
        }
    }
    if pending {
        row.push((was_quoted || !cell.is_empty()).then_some(cell));
        rows.push(row);
    }
    rows
}

impl ExportRecord {
    /// Reads a record back from a CSV row (cells in [`CSV_HEADER`] order).
    pub fn from_csv_row(cells: &[CsvCell]) -> Option<Self> {
        let text = |i: usize| cells.get(i).cloned().flatten();
        let req = |i: usize| text(i);
        Some(Self {
            global_position: req(0)?.parse().ok()?,
            stream_id: req(1)?,
            stream_version: req(2)?.parse().ok()?,
            event_id: req(3)?.parse().ok()?,
            tenant_id: req(4)?.parse().ok()?,
            event_type: req(5)?,
            schema_version: req(6)?.parse().ok()?,
            recorded_at: req(7)?,
            recorded_at_micros: req(8)?.parse().ok()?,
            actor_kind: req(9)?,
            actor_id: req(10)?,
            actor_name: text(11),
            correlation_id: req(12)?,
            causation_id: match text(13) {
                Some(id) => Some(id.parse().ok()?),
                None => None,
            },
            source_ip: text(14),
            user_agent: text(15),
            prev_hash: req(16)?,
            hash: req(17)?,
            log_hash: req(18)?,
            payload_hex: req(19)?,
            data: serde_json::from_str(&req(20)?).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ExportRecord {
        ExportRecord {
            global_position: 3,
            stream_id: "t/tenant".to_owned(),
            stream_version: 1,
            event_id: Uuid::from_u128(1),
            tenant_id: Uuid::from_u128(2),
            event_type: "tenant.updated".to_owned(),
            schema_version: 1,
            recorded_at: "2027-01-15T08:00:00.000000Z".to_owned(),
            recorded_at_micros: 1_800_000_000_000_000,
            actor_kind: "user".to_owned(),
            actor_id: "u,1".to_owned(),
            actor_name: Some(String::new()),
            correlation_id: "say \"hi\"\nthere".to_owned(),
            causation_id: None,
            source_ip: None,
            user_agent: Some("ua".to_owned()),
            prev_hash: Hash32::ZERO.to_hex(),
            hash: Hash32([1; 32]).to_hex(),
            log_hash: Hash32([2; 32]).to_hex(),
            payload_hex: to_hex(&[0, 1, 0xab, 0xff]),
            data: serde_json::json!({"name": "A, \"B\""}),
        }
    }

    #[test]
    fn csv_rows_round_trip_keeping_empty_apart_from_absent() {
        let text = format!("{CSV_HEADER}\n{}\n", record().to_csv_row());
        let rows = parse_csv(&text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].len(), rows[1].len());
        assert_eq!(ExportRecord::from_csv_row(&rows[1]), Some(record()));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
