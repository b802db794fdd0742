//! Given/when/then helpers for aggregate unit tests (test builds only).
//!
//! `given(events).when(command)` folds the history, decides the command, and returns the
//! outcome to compare against the expected events or error.

use tessera_event_schemas::Event;

use crate::{Aggregate, DomainError};

pub struct Given<A> {
    pub state: A,
}

/// Starts a scenario from a history of events.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = Event>) -> Given<A> {
    let events: Vec<Event> = events.into_iter().collect();
    Given {
        state: A::replay(events.iter()),
    }
}

impl<A: Aggregate> Given<A> {
    /// Decides `command` against the folded history.
    pub fn when(&self, command: A::Command) -> Result<Vec<Event>, DomainError> {
        self.state.decide(command)
    }
}
