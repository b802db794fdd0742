//! The canonical bytes that Tessera's tamper evidence covers.
//!
//! Three digests protect the log (all SHA-256, FIPS 180-4):
//! - the **event hash** covers every envelope field except the hashes themselves, plus the
//!   stream's previous event hash and the payload bytes: editing any stored byte changes it;
//! - the **log hash** links each event to the one before it in global order:
//!   `log_hash(p) = SHA-256("TESSERA-LOG-v1\0" || log_hash(p-1) || be64(p) || event_hash(p))`,
//!   so deleting, inserting or reordering events anywhere breaks the chain;
//! - a **checkpoint** signs `(position, log_hash, time)` with the platform's checkpoint key, so
//!   truncating the tail of the log below the newest checkpoint is detected too.
//!
//! The layout is spelled out byte by byte (big-endian integers, u32 length prefixes) rather
//! than delegated to a serializer, so that a third party can re-verify an export without Rust.
//! It is version 1 of the format and is frozen: a change means a new domain-separation tag.

use sha2::{Digest, Sha256};

use crate::envelope::Envelope;
use crate::primitives::{Hash32, Timestamp};

const EVENT_TAG: &[u8] = b"TESSERA-EVENT-v1\0";
const LOG_TAG: &[u8] = b"TESSERA-LOG-v1\0";
const CHECKPOINT_TAG: &[u8] = b"TESSERA-CHECKPOINT-v1\0";

/// The hash of one event: its envelope (without `hash` and `log_hash`) and its payload.
pub fn event_hash(envelope: &Envelope, payload: &[u8]) -> Hash32 {
    let mut h = Sha256::new();
    h.update(EVENT_TAG);
    h.update(envelope.event_id.as_bytes());
    put_str(&mut h, &envelope.stream_id);
    h.update(envelope.stream_version.to_be_bytes());
    h.update(envelope.global_position.to_be_bytes());
    h.update(envelope.tenant_id.as_bytes());
    put_str(&mut h, &envelope.event_type);
    h.update(envelope.schema_version.to_be_bytes());
    h.update(envelope.recorded_at.as_micros().to_be_bytes());
    put_str(&mut h, envelope.actor.kind.as_str());
    put_str(&mut h, &envelope.actor.id);
    put_opt_str(&mut h, envelope.actor.name.as_deref());
    put_str(&mut h, &envelope.correlation_id);
    match envelope.causation_id {
        Some(id) => {
            h.update([1]);
            h.update(id.as_bytes());
        }
        None => h.update([0]),
    }
    put_opt_str(&mut h, envelope.source_ip.as_deref());
    put_opt_str(&mut h, envelope.user_agent.as_deref());
    h.update(envelope.prev_hash.0);
    h.update((payload.len() as u32).to_be_bytes());
    h.update(payload);
    Hash32(h.finalize().into())
}

/// The link that chains an event at `position` to the log before it.
pub fn log_link(prev_log_hash: &Hash32, position: u64, event_hash: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update(LOG_TAG);
    h.update(prev_log_hash.0);
    h.update(position.to_be_bytes());
    h.update(event_hash.0);
    Hash32(h.finalize().into())
}

/// The message a checkpoint signature covers.
pub fn checkpoint_message(position: u64, log_hash: &Hash32, created_at: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_TAG.len() + 8 + 32 + 8);
    out.extend_from_slice(CHECKPOINT_TAG);
    out.extend_from_slice(&position.to_be_bytes());
    out.extend_from_slice(&log_hash.0);
    out.extend_from_slice(&created_at.as_micros().to_be_bytes());
    out
}

fn put_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u32).to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt_str(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => {
            h.update([1]);
            put_str(h, s);
        }
        None => h.update([0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn envelope() -> Envelope {
        Envelope::builder()
            .event_id(Uuid::from_u128(1))
            .stream("s")
            .tenant(Uuid::from_u128(2))
            .event_type("tenant.created", 1)
            .recorded_at(Timestamp::from_micros(5))
            .correlation_id("c")
            .build()
    }

    #[test]
    fn any_changed_field_or_payload_byte_changes_the_event_hash() {
        let base = envelope();
        let h0 = event_hash(&base, b"payload");
        assert_ne!(h0, event_hash(&base, b"paylOad"));
        let mut moved = base.clone();
        moved.global_position = 2;
        assert_ne!(h0, event_hash(&moved, b"payload"));
        let mut renamed = base.clone();
        renamed.actor.name = Some(String::new());
        assert_ne!(h0, event_hash(&renamed, b"payload"));
        // The stored hashes themselves are not covered.
        let mut rehashed = base;
        rehashed.hash = Hash32([9; 32]);
        assert_eq!(h0, event_hash(&rehashed, b"payload"));
    }

    #[test]
    fn the_first_event_hash_is_pinned() {
        // Pins format v1: if this changes, every stored log stops verifying.
        assert_eq!(
            event_hash(&envelope(), b"payload").to_hex(),
            PINNED_EVENT_HASH
        );
    }

    const PINNED_EVENT_HASH: &str =
        "12c742fb393f5990e780176b4374c2a23073129e4fd931b1ab54f8479dd9eb65";
}
