//! Session activity: when each session was last used, counted in memory on every signed-in
//! request (by the [`SessionDirectory`](tessera_projections::SessionDirectory)) and recorded on
//! the log in aggregate, like API key usage ([`crate::usage`]).
//!
//! Every `TESSERA_SESSION_USE_FLUSH_SECS` (60 s by default) one `session.seen` event per user
//! carries the last use of each of their sessions used since the previous flush; nothing is
//! appended per request. The same tick forgets sessions idle past their tenant's timeout.
//! **What a crash can lose:** the uses of the last interval. After a restart such a session
//! looks idle since its last recorded use, so it may expire up to one interval early (and the
//! write side may end it as idle at the user's next sign-in); a clean stop records every use
//! first and loses none. A flush that fails puts its uses back for the next one.

use std::sync::Arc;
use std::time::Duration;

use tessera_commands::{Clock, CommandService, IdGen};
use tessera_event_schemas::EventMetadata;
use tessera_projections::SessionDirectory;

/// Records every unrecorded use; returns the last position appended (0 if none).
pub async fn flush(sessions: &SessionDirectory, commands: &CommandService, ids: &dyn IdGen) -> u64 {
    let mut last = 0;
    for uses in sessions.unrecorded_use() {
        let meta = EventMetadata::system(format!("session-use-{}", ids.new_id()));
        match commands
            .record_session_use(meta, uses.tenant_id, uses.user_id, uses.sessions.clone())
            .await
        {
            Ok(position) => last = last.max(position),
            Err(error) => {
                tracing::warn!(user_id = %uses.user_id, %error, "recording session use failed; will retry");
                sessions.unrecord(&uses);
            }
        }
    }
    last
}

/// Flushes and sweeps idle sessions every `interval` until aborted.
pub async fn run(
    sessions: Arc<SessionDirectory>,
    commands: Arc<CommandService>,
    ids: Arc<dyn IdGen>,
    clock: Arc<dyn Clock>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        flush(&sessions, &commands, &*ids).await;
        sessions.prune(clock.now());
    }
}
