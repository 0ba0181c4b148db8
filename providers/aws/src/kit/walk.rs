//! The kit's walks of list calls: `find`'s pages ([`find_in_pages`]), a sweep's grouped
//! lists ([`sweep`]) and batched reads by id ([`sweep_by_ids`]), on the one pager of
//! `tether_provider::paging`.

use std::collections::HashMap;
use std::future::Future;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use tether_provider::paging::{walk, Page};
use tether_provider::{Handle, ProviderError, RemoteStatus, Sweep, Tracked};

/// Pages through a list call for every job `pick` recognises, oldest first. `list(token)`
/// fetches one page (the answer's JSON); `items` and `next` name the fields holding its
/// entries and the next page's token; `pick` gives a recognised entry's handle and creation
/// time. The services do not promise an order (EMR lists steps newest first, moto lists Glue
/// runs oldest first), so the creation time decides, and the list order only breaks ties
/// (as newest first). At most `max_pages` pages are read.
pub(super) async fn find_in_pages<F, Fut>(
    max_pages: u32,
    items: &str,
    next: &str,
    mut list: F,
    pick: impl Fn(&Value) -> Option<(Handle, Option<f64>)>,
) -> Result<Vec<Handle>, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, ProviderError>>,
{
    let mut found = Vec::new();
    let fetch = |token| {
        let page = list(token);
        async move { Ok(Page::from_json(&page.await?, items, next)) }
    };
    walk(u64::from(max_pages), fetch, |item| {
        found.extend(pick(&item));
        true
    })
    .await?;
    found.reverse();
    found.sort_by(|(_, a), (_, b)| a.unwrap_or(0.0).total_cmp(&b.unwrap_or(0.0)));
    Ok(found.into_iter().map(|(handle, _)| handle).collect())
}

/// How much earlier than tether's record a job's creation time may be (the clocks' skew).
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
/// Parents (clusters, applications, Glue jobs) listed at once in a sweep; the account's rate
/// limiter paces them.
pub(super) const SWEEP_PARALLEL: usize = 8;
/// A bound on the pages of one list, against a service that keeps answering with a token.
const MAX_LIST_PAGES: u64 = 100_000;

/// The jobs of one parent (EMR cluster, EMR Serverless application, Glue job) that a sweep
/// asks about.
#[derive(Debug)]
pub(super) struct Group {
    /// The cluster id, application id or Glue job name.
    pub(super) parent: String,
    /// The oldest job's record time less the clocks' skew, in seconds since the epoch: no job
    /// asked about was created before it.
    pub(super) since: f64,
    /// The jobs' ids (step id, job run id) and their positions in the sweep.
    pub(super) wanted: HashMap<String, usize>,
}

/// Coalesced polling by list calls, shared by the services that list jobs: the jobs asked
/// about are grouped by parent (the handle's fields `parent_field` and `id_field` give its
/// parent and id; no parent field: one group for the account), each
/// group is listed by `list` (groups in parallel), and what it reports is matched back to the
/// jobs.
pub(super) async fn sweep<F, Fut>(
    jobs: &[Tracked<'_>],
    (parent_field, id_field): (Option<&str>, &str),
    list: F,
) -> Result<Sweep, ProviderError>
where
    F: Fn(Group) -> Fut,
    Fut: Future<Output = Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError>>,
{
    let mut groups: HashMap<String, Group> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let text = |name| job.handle.get_str(name);
        let parent = match parent_field {
            Some(name) => text(name),
            None => Some(String::new()),
        };
        let (Some(parent), Some(id)) = (parent, text(id_field)) else {
            continue;
        };
        let since = (job.created_ms - CLOCK_SKEW_MS) as f64 / 1000.0;
        let group = groups.entry(parent.clone()).or_insert_with(|| Group {
            parent,
            since,
            wanted: HashMap::new(),
        });
        group.since = group.since.min(since);
        group.wanted.insert(id, i);
    }
    let listed: Vec<(Vec<(usize, RemoteStatus)>, u64)> = stream::iter(groups.into_values())
        .map(list)
        .buffer_unordered(SWEEP_PARALLEL)
        .try_collect()
        .await?;
    let mut out = Sweep {
        statuses: vec![None; jobs.len()],
        calls: 0,
    };
    for (found, calls) in listed {
        out.calls += calls;
        for (i, status) in found {
            out.statuses[i] = Some(status);
        }
    }
    Ok(out)
}

/// What one batched read found: statuses by job id.
pub(super) type Found = HashMap<String, RemoteStatus>;

/// Coalesced polling by batched reads (Batch `DescribeJobs`, ECS `DescribeTasks`): the jobs
/// asked about are grouped by parent (`parent_field` of the handle, or one group without it),
/// each group is cut into chunks of `chunk` ids (`id_field`), and `describe(parent, ids)`
/// reads one chunk (chunks in parallel), answering the statuses it found by id. A job the
/// answer leaves out gets no status: the engine then asks about it alone.
pub(super) async fn sweep_by_ids<F, Fut>(
    jobs: &[Tracked<'_>],
    (parent_field, id_field): (Option<&str>, &str),
    chunk: usize,
    describe: F,
) -> Result<Sweep, ProviderError>
where
    F: Fn(String, Vec<String>) -> Fut,
    Fut: Future<Output = Result<Found, ProviderError>>,
{
    let mut groups: HashMap<String, Vec<(String, usize)>> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        let parent = match parent_field {
            Some(name) => job.handle.get_str(name),
            None => Some(String::new()),
        };
        let (Some(parent), Some(id)) = (parent, job.handle.get_str(id_field)) else {
            continue;
        };
        groups.entry(parent).or_default().push((id, i));
    }
    // (parent, [(id, position in `jobs`)]): what one call reads.
    type Chunk = (String, Vec<(String, usize)>);
    let chunks: Vec<Chunk> = groups
        .into_iter()
        .flat_map(|(parent, ids)| {
            ids.chunks(chunk)
                .map(|c| (parent.clone(), c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    let calls = chunks.len() as u64;
    let answers: Vec<(Vec<(String, usize)>, Found)> = stream::iter(chunks)
        .map(|(parent, wanted)| {
            let ids = wanted.iter().map(|(id, _)| id.clone()).collect();
            let call = describe(parent, ids);
            async move { call.await.map(|found| (wanted, found)) }
        })
        .buffer_unordered(SWEEP_PARALLEL)
        .try_collect()
        .await?;
    let mut out = Sweep {
        statuses: vec![None; jobs.len()],
        calls,
    };
    for (wanted, mut found) in answers {
        for (id, i) in wanted {
            out.statuses[i] = found.remove(&id);
        }
    }
    Ok(out)
}

/// Reads a list call page after page, handing every entry to `each` until it says stop
/// (`false`) or the pages run out; returns the calls made. `items` and `next` name the fields
/// holding a page's entries and the next page's token.
pub(super) async fn each_page<F, Fut>(
    items: &str,
    next: &str,
    mut list: F,
    mut each: impl FnMut(&Value) -> bool,
) -> Result<u64, ProviderError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<Value, ProviderError>>,
{
    let fetch = |token| {
        let page = list(token);
        async move { Ok(Page::from_json(&page.await?, items, next)) }
    };
    Ok(walk(MAX_LIST_PAGES, fetch, |item| each(&item)).await?.calls)
}
