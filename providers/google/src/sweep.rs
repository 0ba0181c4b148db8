//! What the Google kinds' coalesced sweeps share: the jobs asked about grouped by where one
//! list lists them (a BigQuery project; a Dataproc project and region), each group listed
//! from its oldest job's creation less the clocks' skew, and the listed statuses matched back
//! to the jobs by id. A job no list names is left to a status call of its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;

use tether_provider::{Handle, ProviderError, RemoteStatus, Sweep, Tracked};

use crate::CLOCK_SKEW_MS;

/// What one list call of a group found: each listed job's id and status; and the calls made.
pub type Listed = (Vec<(String, RemoteStatus)>, u64);

/// Sweeps `jobs`: `place` says where a handle's job is listed and its id there (`None`: a
/// handle not of this kind, left out); `list(place, since_ms)` lists a place's active jobs
/// created at or after `since_ms`.
pub async fn sweep<P, F, Fut>(
    jobs: &[Tracked<'_>],
    place: impl Fn(&Handle) -> Option<(P, String)>,
    list: F,
) -> Result<Sweep, ProviderError>
where
    P: Eq + Hash,
    F: Fn(P, i64) -> Fut,
    Fut: Future<Output = Result<Listed, ProviderError>>,
{
    let mut statuses = vec![None; jobs.len()];
    let mut groups: HashMap<P, (i64, HashMap<String, usize>)> = HashMap::new();
    for (i, tracked) in jobs.iter().enumerate() {
        if let Some((at, id)) = place(tracked.handle) {
            let (since, wanted) = groups.entry(at).or_insert((i64::MAX, HashMap::new()));
            *since = (*since).min(tracked.created_ms);
            wanted.insert(id, i);
        }
    }
    let mut calls = 0;
    for (at, (since, wanted)) in groups {
        let (listed, n) = list(at, since - CLOCK_SKEW_MS).await?;
        calls += n;
        for (id, status) in listed {
            if let Some(&i) = wanted.get(&id) {
                statuses[i] = Some(status);
            }
        }
    }
    Ok(Sweep { statuses, calls })
}
