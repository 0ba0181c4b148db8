//! One pager for the lists providers walk: page after page by the token each page gives for
//! the next, up to a number of pages, an item at a time. Adapters say how one page is fetched
//! and read ([`Page`]); the walking, the limit and the count of calls live here.
//!
//! Three kinds of list share the one walk, as three ways of making the next page's token:
//! - token pages (AWS `NextToken`, Databricks `next_page_token`): [`Page::new`];
//! - offset pages (`offset` and `limit`, as dbt Cloud lists runs): [`Page::at_offset`], the
//!   token being the next offset ([`offset`] reads it back);
//! - time windows, newest first (`created_before`, as a list without tokens is read back in
//!   time): [`Page::before`], the token being the oldest time seen ([`before`] reads it
//!   back).

use std::future::Future;

use serde_json::Value;

use crate::ProviderError;

/// One page of a list: its items, and the token of the next page (none on the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The next page's token; an empty one counts as none.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items`, followed by the page of `next` if it is a token.
    pub fn new(items: Vec<T>, next: Option<String>) -> Self {
        Self {
            items,
            next: next.filter(|t| !t.is_empty()),
        }
    }
}

impl<T> Page<T> {
    /// A page of an offset-paged list, `limit` items asked from `offset`: a full page is
    /// followed by the page at the next offset, a short one ends the list.
    pub fn at_offset(items: Vec<T>, offset: u64, limit: u64) -> Self {
        let got = items.len() as u64;
        let next = (got > 0 && got >= limit).then(|| (offset + got).to_string());
        Self { items, next }
    }

    /// A page of a list read in time windows, newest first, `limit` items asked: a full page
    /// is followed by the window before its oldest item's time (`time_of`, in the list's
    /// unit), a short one (or one without times) ends the list. An item at exactly that
    /// time may be listed again in the next window: `each` must tolerate seeing it twice.
    pub fn before(items: Vec<T>, limit: usize, time_of: impl Fn(&T) -> Option<i64>) -> Self {
        let oldest = items.iter().filter_map(&time_of).min();
        let next = oldest
            .filter(|_| !items.is_empty() && items.len() >= limit)
            .map(|t| t.to_string());
        Self { items, next }
    }
}

/// The offset a token of [`Page::at_offset`] names: 0 for the first page.
pub fn offset(token: Option<&str>) -> Result<u64, ProviderError> {
    cursor(token, "offset", 0)
}

/// The time a token of [`Page::before`] names: none for the first page (the newest window).
pub fn before(token: Option<&str>) -> Result<Option<i64>, ProviderError> {
    token.map(|t| cursor(Some(t), "time", 0)).transpose()
}

fn cursor<N: std::str::FromStr>(
    token: Option<&str>,
    what: &str,
    first: N,
) -> Result<N, ProviderError> {
    match token {
        None => Ok(first),
        Some(t) => t.parse().map_err(|_| {
            ProviderError::permanent("paging", format!("a page token {t:?} is not a {what}"))
        }),
    }
}

impl Page<Value> {
    /// A JSON answer's page: its array `items`, and its string `next`.
    pub fn from_json(answer: &Value, items: &str, next: &str) -> Self {
        let listed = answer[items].as_array().cloned().unwrap_or_default();
        Self::new(listed, answer[next].as_str().map(str::to_string))
    }
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    /// Pages fetched.
    pub calls: u64,
    /// The list ended, or `each` stopped it: not cut short by the page limit.
    pub complete: bool,
}

/// Walks a list: `fetch(token)` (first `None`) for each page, `each(item)` for each item until
/// it answers `false`, at most `max_pages` pages.
pub async fn walk<T, F, Fut>(
    max_pages: u64,
    mut fetch: F,
    mut each: impl FnMut(T) -> bool,
) -> Result<Walked, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Page<T>, ProviderError>>,
{
    let mut token = None;
    let mut calls = 0;
    while calls < max_pages {
        let page = fetch(token.take()).await?;
        calls += 1;
        let go_on = page.items.into_iter().all(&mut each);
        match page.next {
            Some(t) if go_on => token = Some(t),
            _ => {
                return Ok(Walked {
                    calls,
                    complete: true,
                })
            }
        }
    }
    Ok(Walked {
        calls,
        complete: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list of `n` numbers, `size` a page, the token being the next index.
    async fn numbers(
        n: usize,
        size: usize,
        token: Option<String>,
    ) -> Result<Page<usize>, ProviderError> {
        let from: usize = token.map_or(0, |t| t.parse().unwrap());
        let to = (from + size).min(n);
        let next = (to < n).then(|| to.to_string());
        Ok(Page::new((from..to).collect(), next))
    }

    /// Every item of a walk of at most 10 pages, and how it ended.
    async fn every<T, F, Fut>(fetch: F) -> (Vec<T>, Walked)
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<Page<T>, ProviderError>>,
    {
        let mut seen = Vec::new();
        let walked = walk(10, fetch, |i| {
            seen.push(i);
            true
        })
        .await
        .unwrap();
        (seen, walked)
    }

    #[tokio::test]
    async fn walks_to_the_end_within_the_limit() {
        let (seen, walked) = every(|t| numbers(25, 10, t)).await;
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        assert_eq!(
            walked,
            Walked {
                calls: 3,
                complete: true
            }
        );
    }

    #[tokio::test]
    async fn stops_when_told_and_at_the_limit() {
        let walked = walk(10, |t| numbers(100, 10, t), |i| i < 15).await.unwrap();
        assert_eq!(
            walked,
            Walked {
                calls: 2,
                complete: true
            }
        );
        let walked = walk(2, |t| numbers(100, 10, t), |_| true).await.unwrap();
        assert_eq!(
            walked,
            Walked {
                calls: 2,
                complete: false
            }
        );
    }

    /// An offset-paged list of `n` numbers.
    async fn by_offset(
        n: u64,
        limit: u64,
        token: Option<String>,
    ) -> Result<Page<u64>, ProviderError> {
        let from = offset(token.as_deref())?;
        let to = (from + limit).min(n);
        Ok(Page::at_offset((from..to).collect(), from, limit))
    }

    /// A list of the times `0..n`, newest first, read in windows before a time.
    async fn by_time(
        n: i64,
        limit: usize,
        token: Option<String>,
    ) -> Result<Page<i64>, ProviderError> {
        let end = before(token.as_deref())?.unwrap_or(n);
        let items: Vec<i64> = (0..end).rev().take(limit).collect();
        Ok(Page::before(items, limit, |t| Some(*t)))
    }

    #[tokio::test]
    async fn offset_pages_and_time_windows_walk_the_same_way() {
        let (seen, walked) = every(|t| by_offset(25, 10, t)).await;
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        assert_eq!(walked.calls, 3);
        // A list of exactly two full pages ends on an empty third.
        let (_, walked) = every(|t| by_offset(20, 10, t)).await;
        assert_eq!((walked.calls, walked.complete), (3, true));

        let (seen, walked) = every(|t| by_time(25, 10, t)).await;
        assert_eq!(seen, (0..25).rev().collect::<Vec<_>>());
        assert_eq!(walked.calls, 3);
        // Newest first: stopping at a time stops the walk.
        let walked = walk(10, |t| by_time(100, 10, t), |i| i >= 85)
            .await
            .unwrap();
        assert_eq!((walked.calls, walked.complete), (2, true));
    }

    #[test]
    fn a_token_that_is_no_offset_or_time_is_refused() {
        assert_eq!(offset(None).unwrap(), 0);
        assert_eq!(offset(Some("40")).unwrap(), 40);
        assert!(offset(Some("x")).is_err());
        assert_eq!(before(None).unwrap(), None);
        assert_eq!(before(Some("1700")).unwrap(), Some(1700));
        assert!(before(Some("soon")).is_err());
    }

    #[test]
    fn an_empty_token_ends_the_list() {
        let page = Page::from_json(&serde_json::json!({"xs": [1], "next": ""}), "xs", "next");
        assert_eq!(page.next, None);
        assert_eq!(page.items.len(), 1);
    }
}
