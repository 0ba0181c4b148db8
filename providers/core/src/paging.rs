//! One pager for the lists providers walk: page after page by the token each page gives for
//! the next, up to a number of pages, an item at a time. Adapters say how one page is fetched
//! and read ([`Page`]); the walking, the limit and the count of calls live here.

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

    #[tokio::test]
    async fn walks_to_the_end_within_the_limit() {
        let mut seen = Vec::new();
        let walked = walk(
            10,
            |t| numbers(25, 10, t),
            |i| {
                seen.push(i);
                true
            },
        )
        .await
        .unwrap();
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

    #[test]
    fn an_empty_token_ends_the_list() {
        let page = Page::from_json(&serde_json::json!({"xs": [1], "next": ""}), "xs", "next");
        assert_eq!(page.next, None);
        assert_eq!(page.items.len(), 1);
    }
}
