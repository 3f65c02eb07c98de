//! Pages of an admin list: `?limit=` (1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`]) and
//! `?cursor=` (the `next_cursor` of the page before). Lists are in creation order (then id), so
//! a page never repeats or skips an item that existed when the first page was read, whatever is
//! created meanwhile; new items come on the last pages.

use chrono::{DateTime, Utc};
use clicktrail_api::error::{ApiError, FieldError};
use serde::{Deserialize, Serialize};

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 1000;

/// Which page.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page; absent for the first.
    pub cursor: Option<String>,
}

/// One page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The items, in creation order.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The position of an item in creation order, as a cursor: creation time in nanoseconds (the
/// precision items are created with, so that items of one millisecond keep their order),
/// zero-padded so that text order is time order, then the id.
fn position(created_at: DateTime<Utc>, id: &str) -> String {
    let nanos = created_at
        .timestamp_nanos_opt()
        .unwrap_or_else(|| created_at.timestamp_micros().saturating_mul(1000))
        .max(0);
    format!("{nanos:020}.{id}")
}

/// The page of `items` that `q` asks for; `key` gives each item's creation time and id.
///
/// Errors: a `limit` out of range, or a `cursor` that is not one this API gave.
pub fn paginate<T>(
    mut items: Vec<T>,
    q: &PageQuery,
    key: impl Fn(&T) -> (DateTime<Utc>, &str),
) -> Result<Page<T>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::fields(vec![FieldError::new(
            "limit",
            format!("expected 1 to {MAX_LIMIT}"),
        )]));
    }
    if let Some(c) = &q.cursor {
        let valid = c.split_once('.').is_some_and(|(ms, id)| {
            ms.len() == 20 && ms.bytes().all(|b| b.is_ascii_digit()) && !id.is_empty()
        });
        if !valid {
            return Err(ApiError::fields(vec![FieldError::new(
                "cursor",
                "expected the next_cursor of a previous page",
            )]));
        }
    }
    items.sort_by(|a, b| {
        let (ta, ia) = key(a);
        let (tb, ib) = key(b);
        ta.cmp(&tb).then_with(|| ia.cmp(ib))
    });
    let start = match &q.cursor {
        Some(c) => items.partition_point(|i| {
            let (t, id) = key(i);
            position(t, id).as_str() <= c.as_str()
        }),
        None => 0,
    };
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    let next_cursor = (rest.len() > limit).then(|| {
        let (t, id) = key(&rest[limit - 1]);
        position(t, id)
    });
    rest.truncate(limit);
    Ok(Page {
        items: rest,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_item_once_in_creation_order() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        // Three items share a creation time: the id orders them.
        let items: Vec<(DateTime<Utc>, String)> = (0..25)
            .map(|i| {
                (
                    t0 + chrono::Duration::seconds(i / 3),
                    format!("id{:02}", 24 - i),
                )
            })
            .collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = PageQuery {
                limit: Some(7),
                cursor: cursor.clone(),
            };
            let page = paginate(items.clone(), &q, |(t, id)| (*t, id.as_str())).unwrap();
            assert!(page.items.len() <= 7);
            seen.extend(page.items.into_iter().map(|(_, id)| id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut expected = items.clone();
        expected.sort();
        let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_limits_and_cursors_name_their_field() {
        let items: Vec<(DateTime<Utc>, String)> = Vec::new();
        for (limit, cursor, field) in [
            (Some(0), None, "limit"),
            (Some(1001), None, "limit"),
            (None, Some("nope".to_string()), "cursor"),
        ] {
            let q = PageQuery { limit, cursor };
            let err = paginate(items.clone(), &q, |(t, id)| (*t, id.as_str())).unwrap_err();
            assert!(format!("{err:?}").contains(field), "{err:?}");
        }
    }
}
