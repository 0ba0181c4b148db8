//! Paging of every list: the page size a query asks for, and cutting a read of one item more
//! than the page to tell whether another page follows.

use super::error::ApiError;

/// The page size `limit` asks for (`default` without one), refused outside `1..=max`.
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit {limit} is outside 1..={max}"
        )))
    }
}

/// Cuts `items` (read with a limit of `limit + 1`) to `limit`; the last one kept if another
/// page follows.
pub fn cut<T>(items: &mut Vec<T>, limit: i64) -> Option<&T> {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last()
    } else {
        None
    }
}
