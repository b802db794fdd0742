//! One Kafka publisher at a time across nodes: a PostgreSQL session-level advisory lock.
//!
//! Every node on one PostgreSQL database starts a publisher, but only the node holding the
//! lock publishes; the others stand by and try again every [`RETRY`]. The lock is taken with
//! `pg_try_advisory_lock` on a connection of its own, so it lives exactly as long as that
//! connection: when the holder dies (even `kill -9`, whose socket the kernel closes) PostgreSQL
//! ends its session, the lock is free, and a standby takes over at its next try, resuming from
//! the checkpoint the holder last wrote. Its key is derived from the checkpoint's name, so
//! publishers of different main topics do not exclude each other.
//!
//! The holder writes its checkpoint through the lock's own connection: while that write
//! succeeds, the session is alive and no other node can hold the lock. A holder that lost its
//! connection (and so, perhaps, its lock) fails that write and stops before moving the
//! checkpoint; it may have sent a batch another node sends again, which is the at-least-once
//! the publisher already documents, never a gap. The checkpoint only ever moves forward
//! (`GREATEST`), so a late write cannot take it back.
//!
//! SQLite deployments are single-node and take no lease.

use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use crate::store::PUBLISHER_CHECKPOINTS;

/// How often a standby tries to take the lock, and how often the holder checks its connection.
pub const RETRY: Duration = Duration::from_secs(1);

/// The right to publish, on one PostgreSQL database.
pub struct PublisherLease {
    url: String,
    key: i64,
    /// The connection holding (or trying to take) the lock.
    connection: Option<PgConnection>,
    held: bool,
}

impl std::fmt::Debug for PublisherLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PublisherLease")
            .field("key", &self.key)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl PublisherLease {
    /// A lease on the database at `url` for the publisher whose checkpoint is `checkpoint`.
    pub fn postgres(url: impl Into<String>, checkpoint: &str) -> Self {
        Self {
            url: url.into(),
            key: lock_key(checkpoint),
            connection: None,
            held: false,
        }
    }

    /// Whether this node holds the lock (as far as it knows: see [`Self::check`]).
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Takes the lock if it is free; `Ok(false)` when another node holds it.
    pub async fn try_acquire(&mut self) -> Result<bool, sqlx::Error> {
        if self.held {
            return Ok(true);
        }
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self
                .connection
                .insert(PgConnection::connect(&self.url).await?),
        };
        let taken: Result<bool, sqlx::Error> =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(self.key)
                .fetch_one(&mut *connection)
                .await;
        match taken {
            Ok(taken) => {
                self.held = taken;
                Ok(taken)
            }
            Err(error) => {
                self.release();
                Err(error)
            }
        }
    }

    /// Checks that the connection holding the lock is alive; if not, the lock may be another
    /// node's already, so this node lets it go.
    pub async fn check(&mut self) -> Result<(), sqlx::Error> {
        let checked = match &mut self.connection {
            Some(connection) if self.held => connection.execute("SELECT 1").await.map(|_| ()),
            _ => Err(sqlx::Error::PoolClosed),
        };
        if checked.is_err() {
            self.release();
        }
        checked
    }

    /// Records that everything up to `position` is delivered, through the lock's connection
    /// (see the module documentation). An error means the lease is lost.
    pub async fn set_checkpoint(
        &mut self,
        publisher: &str,
        position: u64,
    ) -> Result<(), sqlx::Error> {
        let written = match &mut self.connection {
            Some(connection) if self.held => sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {PUBLISHER_CHECKPOINTS} (publisher, position) VALUES ($1, $2) \
                 ON CONFLICT (publisher) DO UPDATE \
                 SET position = GREATEST({PUBLISHER_CHECKPOINTS}.position, excluded.position)"
            )))
            .bind(publisher)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *connection)
            .await
            .map(|_| ()),
            _ => Err(sqlx::Error::PoolClosed),
        };
        if written.is_err() {
            self.release();
        }
        written
    }

    /// Lets the lock go by closing its connection (PostgreSQL frees it with the session).
    pub fn release(&mut self) {
        self.held = false;
        self.connection = None;
    }
}

/// The advisory lock's key: FNV-1a (64 bits) of a fixed prefix and the checkpoint's name, so
/// that it is the same on every node and every build.
fn lock_key(checkpoint: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = format!("tessera.kafka-publisher:{checkpoint}")
        .bytes()
        .fold(OFFSET, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_key_is_fixed_per_checkpoint_and_differs_between_checkpoints() {
        assert_eq!(
            lock_key("kafka:tessera.audit.v1"),
            lock_key("kafka:tessera.audit.v1")
        );
        assert_ne!(lock_key("kafka:tessera.audit.v1"), lock_key("kafka:other"));
        // Pinned: every node, of every build, must compute the same key.
        assert_eq!(
            lock_key("kafka:tessera.audit.v1"),
            -7_840_276_161_404_440_980
        );
    }
}
