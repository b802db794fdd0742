//! Keyset pagination of the listings: the opaque cursor a page hands back, and trimming a page
//! to its limit.

use uuid::Uuid;

use crate::error::ReadError;
use crate::views::Page;

/// The last row of a page: `(created_at, id)`, the listing's sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) created_at: i64,
    pub(crate) id: Uuid,
}

impl Cursor {
    /// Opaque to callers; versioned so that the encoding can change without misreading old
    /// cursors.
    pub(crate) fn encode(&self) -> String {
        format!("c1.{}.{}", self.created_at, self.id.simple())
    }

    pub(crate) fn parse(text: &str) -> Result<Self, ReadError> {
        let rest = text.strip_prefix("c1.").ok_or(ReadError::InvalidCursor)?;
        let (micros, id) = rest.split_once('.').ok_or(ReadError::InvalidCursor)?;
        Ok(Self {
            created_at: micros.parse().map_err(|_| ReadError::InvalidCursor)?,
            id: Uuid::try_parse(id).map_err(|_| ReadError::InvalidCursor)?,
        })
    }
}

/// Trims the one extra row a listing fetched to learn whether another page follows.
pub(crate) fn page<T>(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page { items, next_cursor }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_foreign_text() {
        let cursor = Cursor {
            created_at: 1_700_000_000_000_001,
            id: Uuid::from_u128(42),
        };
        assert_eq!(Cursor::parse(&cursor.encode()).ok(), Some(cursor));
        assert!(matches!(
            Cursor::parse("garbage"),
            Err(ReadError::InvalidCursor)
        ));
        assert!(matches!(
            Cursor::parse("c1.x.y"),
            Err(ReadError::InvalidCursor)
        ));
    }

    #[test]
    fn a_full_page_with_one_row_to_spare_has_a_next_cursor() {
        let key = |n: &i64| Cursor {
            created_at: *n,
            id: Uuid::nil(),
        };
        let more = page(vec![1, 2, 3], 2, key);
        assert_eq!(more.items, vec![1, 2]);
        assert_eq!(more.next_cursor, Some(key(&2).encode()));
        let last = page(vec![1, 2], 2, key);
        assert_eq!(last.next_cursor, None);
    }
}
