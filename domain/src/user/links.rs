//! The rules of a user's emailed links: password resets and address verifications (ADR 0004).
//!
//! A link's token names the user it is for (its `link_id` is the user's id, so the token names
//! the stream the decision is made on, as an invitation's names the invitation's), and the
//! user's stream keeps only its keyed hash. This module holds, per kind of link, the one that
//! works (the latest) and the recent ones that no longer do, so that a refused link can be told
//! apart: unknown, expired, used, replaced by a newer one, or voided by a change since. It does
//! not verify tokens (that is a keyed hash, in `tessera_crypto`): callers pass the comparison
//! in. Pure: no clock; times come with the commands.
//!
//! # Rules
//! - **Reset**: valid for [`RESET_LINK_SECS`]; works while it is the latest reset link and no
//!   password was set since (setting a password, by the link or otherwise, spends it). A new
//!   request within [`RESET_THROTTLE_SECS`] of the last one sends nothing. Only an active user
//!   gets one: a disabled user's request sends nothing (the answer is the same).
//! - **Verification**: valid for [`VERIFICATION_LINK_SECS`]; works while it is the latest and
//!   the address is the one it was sent to (a change of address voids it); following it
//!   verifies the address once.

use tessera_event_schemas::{Hash32, Timestamp};

/// How long a password reset link works (ADR 0004: 30 minutes).
pub const RESET_LINK_SECS: i64 = 30 * 60;
/// How long an address verification link works (ADR 0004: 24 hours).
pub const VERIFICATION_LINK_SECS: i64 = 24 * 3600;
/// A reset request this soon after the last one sends nothing, so that the form cannot be used
/// to flood a mailbox.
pub const RESET_THROTTLE_SECS: i64 = 60;
/// How many links no longer in use a user's state remembers per kind, to say why one fails.
const SPENT_KEPT: usize = 8;

/// A link as its request recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Keyed hash of the token.
    pub token_hash: Hash32,
    pub expires_at: Timestamp,
}

/// Why a link that is not the working one stopped working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spent {
    /// It was used (or, for a reset link, a password was set since).
    Used,
    /// A newer link of the same kind was sent.
    Replaced,
    /// What it was for changed (a verification link's address).
    Voided,
}

/// Why a link is refused, as far as the holder of the link may know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    /// No such link (or not this user's, or malformed).
    Unknown,
    Expired,
    Used,
    Replaced,
    Voided,
}

impl LinkRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Unknown => "unknown",
            LinkRefusal::Expired => "expired",
            LinkRefusal::Used => "used",
            LinkRefusal::Replaced => "replaced",
            LinkRefusal::Voided => "voided",
        }
    }
}

/// One kind of link of one user: the working one and the recent ones that are not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSlot {
    pub current: Option<Link>,
    /// Newest first, at most [`SPENT_KEPT`].
    pub spent: Vec<(Link, Spent)>,
}

impl LinkSlot {
    /// A new link replaces the working one.
    pub(crate) fn issue(&mut self, link: Link) {
        self.spend(Spent::Replaced);
        self.current = Some(link);
    }

    /// The working link, if any, stops working for `why`.
    pub(crate) fn spend(&mut self, why: Spent) {
        if let Some(link) = self.current.take() {
            self.spent.insert(0, (link, why));
            self.spent.truncate(SPENT_KEPT);
        }
    }

    /// Whether the token that `matches` a hash is the working link at `now`, and if not, why.
    /// `matches` compares in constant time; every remembered link is compared, whatever the
    /// outcome of the first, so that the work done says nothing.
    pub fn check(
        &self,
        matches: impl Fn(&Hash32) -> bool,
        now: Timestamp,
    ) -> Result<Link, LinkRefusal> {
        let current = self.current.filter(|link| matches(&link.token_hash));
        let spent = self.spent.iter().fold(None, |found, (link, why)| {
            let hit = matches(&link.token_hash);
            found.or(hit.then_some(*why))
        });
        match (current, spent) {
            (Some(link), _) if now >= link.expires_at => Err(LinkRefusal::Expired),
            (Some(link), _) => Ok(link),
            (None, Some(Spent::Used)) => Err(LinkRefusal::Used),
            (None, Some(Spent::Replaced)) => Err(LinkRefusal::Replaced),
            (None, Some(Spent::Voided)) => Err(LinkRefusal::Voided),
            (None, None) => Err(LinkRefusal::Unknown),
        }
    }

    /// When the working link was requested, from its expiry and `validity`.
    pub fn requested_at(&self, validity_secs: i64) -> Option<Timestamp> {
        self.current
            .map(|link| link.expires_at.plus_seconds(-validity_secs))
    }
}

/// A user's links, one slot per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserLinks {
    pub reset: LinkSlot,
    pub verification: LinkSlot,
}
