//! API key usage: counted in memory on every use, recorded on the log in aggregate.
//!
//! One `api_key.used` event per key and flush interval (`TESSERA_USAGE_FLUSH_SECS`, 10 s by
//! default) carries the number of uses since the previous one, instead of one event per call.
//! Reads add what is still pending in memory to what the read model holds, so the usage API
//! is exact while the process runs. A crash (kill -9, power loss) loses at most the uses of
//! the last interval; a clean shutdown flushes first and loses none. A flush that fails puts
//! its counts back, to be retried at the next one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tessera_commands::{CommandService, IdGen};
use tessera_event_schemas::events::ApiKeyUsedV1;
use tessera_event_schemas::{EventMetadata, Timestamp};
use uuid::Uuid;

/// Uses of one key not yet recorded on the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub uses: u64,
    pub first_used_at: Timestamp,
    pub last_used_at: Timestamp,
}

impl Pending {
    fn add(&mut self, other: Pending) {
        self.uses += other.uses;
        self.first_used_at = self.first_used_at.min(other.first_used_at);
        self.last_used_at = self.last_used_at.max(other.last_used_at);
    }
}

/// Counts uses per (tenant, key) until they are flushed.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<(Uuid, Uuid), Pending>>,
}

impl UsageRecorder {
    /// Counts one use of `key_id` at `now`.
    pub fn record(&self, tenant_id: Uuid, key_id: Uuid, now: Timestamp) {
        self.add(
            tenant_id,
            key_id,
            Pending {
                uses: 1,
                first_used_at: now,
                last_used_at: now,
            },
        );
    }

    /// Uses of `key_id` not yet recorded.
    pub fn pending(&self, tenant_id: Uuid, key_id: Uuid) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(tenant_id, key_id))
            .copied()
    }

    /// Records every pending count on the log; returns the last position appended (0 if none).
    /// Each event's correlation id comes from `ids`.
    pub async fn flush(&self, commands: &CommandService, ids: &dyn IdGen) -> u64 {
        let drained: Vec<((Uuid, Uuid), Pending)> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        let mut last = 0;
        for ((tenant_id, key_id), pending) in drained {
            let used = ApiKeyUsedV1 {
                uses: pending.uses,
                first_used_at: pending.first_used_at,
                last_used_at: pending.last_used_at,
            };
            let meta = EventMetadata::system(format!("usage-{}", ids.new_id()));
            match commands
                .record_api_key_usage(meta, tenant_id, key_id, used)
                .await
            {
                Ok(position) => last = last.max(position),
                Err(error) => {
                    tracing::warn!(%key_id, %error, "recording API key usage failed; will retry");
                    self.add(tenant_id, key_id, pending);
                }
            }
        }
        last
    }

    /// Adds `uses` to the key's pending count (a new use, or a failed flush put back).
    fn add(&self, tenant_id: Uuid, key_id: Uuid, uses: Pending) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((tenant_id, key_id))
            .and_modify(|p| p.add(uses))
            .or_insert(uses);
    }
}

/// Flushes every `interval` until aborted.
pub async fn run(
    recorder: std::sync::Arc<UsageRecorder>,
    commands: std::sync::Arc<CommandService>,
    ids: std::sync::Arc<dyn IdGen>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        recorder.flush(&commands, &*ids).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_accumulate_per_key_until_flushed() {
        let recorder = UsageRecorder::default();
        let (tenant, a, b) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        recorder.record(tenant, a, Timestamp::from_micros(10));
        recorder.record(tenant, a, Timestamp::from_micros(30));
        recorder.record(tenant, a, Timestamp::from_micros(20));
        recorder.record(tenant, b, Timestamp::from_micros(5));
        assert_eq!(
            recorder.pending(tenant, a),
            Some(Pending {
                uses: 3,
                first_used_at: Timestamp::from_micros(10),
                last_used_at: Timestamp::from_micros(30),
            })
        );
        assert_eq!(recorder.pending(tenant, b).map(|p| p.uses), Some(1));
        assert_eq!(recorder.pending(Uuid::from_u128(9), a), None);
        recorder.add(
            tenant,
            b,
            Pending {
                uses: 2,
                first_used_at: Timestamp::from_micros(1),
                last_used_at: Timestamp::from_micros(2),
            },
        );
        let b_pending = recorder.pending(tenant, b).unwrap();
        assert_eq!(b_pending.uses, 3);
        assert_eq!(b_pending.first_used_at, Timestamp::from_micros(1));
        assert_eq!(b_pending.last_used_at, Timestamp::from_micros(5));
    }
}
