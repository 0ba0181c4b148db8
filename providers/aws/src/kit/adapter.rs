//! [`Kit`]: tether's provider trait over a [`JobApi`] description.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tether_provider::http::Idempotency;
use tether_provider::{
    ErrorKind, Handle, Provider, ProviderError, RemoteStatus, Result, SendGate, Sweep, Tracked,
};

use super::gather::{Answer, Gather, Joined};
use super::walk::{each_page, find_in_pages, sweep, sweep_by_ids, Group};
use super::{Call, JobApi, Listing, Protocol, Start, SweepBy};
use crate::client::{AwsClient, Json};
use crate::config::AwsConfig;

/// The adapter of an AWS job service described by `A`: its client, its settings and the
/// description.
#[derive(Debug)]
pub struct Kit<A> {
    client: AwsClient,
    config: AwsConfig,
    api: A,
    /// Status reads being gathered into one call (kinds whose [`JobApi::gathers`]).
    gather: Arc<Gather>,
}

impl<A: JobApi + Default> Kit<A> {
    /// An adapter for the configured account and region.
    pub fn new(config: AwsConfig) -> Result<Self, ProviderError> {
        Self::with(A::default(), config)
    }
}

impl<A: JobApi> Kit<A> {
    /// An adapter of `api` for the configured account and region.
    pub fn with(api: A, config: AwsConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: AwsClient::new(&config)?,
            config,
            api,
            gather: Arc::default(),
        })
    }

    /// The client, for calls tether does not wrap (tests make moto's resources with it).
    pub fn client(&self) -> &AwsClient {
        &self.client
    }

    /// Sends `call` by the service's protocol (its body moved, not copied: every poll sends
    /// one).
    async fn send(&self, call: Call, idempotency: Idempotency<'_>) -> Result<Value, ProviderError> {
        let Call {
            op,
            method,
            path,
            body,
        } = call;
        match self.api.about().protocol {
            Protocol::Rest => {
                self.client
                    .rest(op, method, &path, body.as_ref(), idempotency)
                    .await
            }
            Protocol::Json10(prefix) => {
                let body = body.unwrap_or_else(|| json!({}));
                self.client
                    .json(Json::V1_0, prefix, op, &body, idempotency)
                    .await
            }
            Protocol::Json11(prefix) => {
                let body = body.unwrap_or_else(|| json!({}));
                self.client
                    .json(Json::V1_1, prefix, op, &body, idempotency)
                    .await
            }
        }
    }

    /// A read that may be sent again.
    async fn read(&self, call: Call) -> Result<Value, ProviderError> {
        self.send(call, Idempotency::Idempotent).await
    }

    /// One page function of `listing`, for the pagers.
    fn pages<'a>(
        &'a self,
        listing: &'a Listing,
    ) -> impl FnMut(Option<String>) -> BoxFuture<'a, Result<Value, ProviderError>> + 'a {
        move |token| Box::pin(self.read(listing.call.page(listing.next, token)))
    }

    /// The page function of `find`'s `listing`: a page of ids is read (`find_reads`) into the
    /// entries `found` judges.
    fn find_pages<'a>(
        &'a self,
        listing: &'a Listing,
    ) -> impl FnMut(Option<String>) -> BoxFuture<'a, Result<Value, ProviderError>> + 'a {
        move |token| {
            Box::pin(async move {
                let mut page = self.read(listing.call.page(listing.next, token)).await?;
                let ids: Vec<String> = page[listing.items]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect();
                if ids.is_empty() {
                    return Ok(page);
                }
                if let Some((call, items)) = self.api.find_reads(ids) {
                    let read = self.read(call).await?;
                    page[listing.items] = read[items].clone();
                }
                Ok(page)
            })
        }
    }

    /// One group's list for a sweep: the entries asked about, and the calls made.
    async fn list_group(
        &self,
        group: Group,
    ) -> Result<(Vec<(usize, RemoteStatus)>, u64), ProviderError> {
        let Some(listing) = self.api.sweep_list(&group.parent, group.since) else {
            return Ok((Vec::new(), 0));
        };
        let mut found = Vec::new();
        let calls = each_page(listing.items, listing.next, self.pages(&listing), |entry| {
            if let Some((id, status)) = self.api.listed(entry) {
                if let Some(&i) = group.wanted.get(&id) {
                    found.push((i, status));
                }
            }
            found.len() < group.wanted.len() && !self.api.past(entry, group.since)
        })
        .await?;
        Ok((found, calls))
    }

    /// A status read of its own: one describe call.
    async fn read_status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let answer = self.read(self.api.describe(handle)?).await?;
        self.api.status(handle, &answer)
    }

    /// Where a status read of `handle` may be gathered with others: its group, its id, the
    /// most ids a call takes and the window (`None`: it is read alone).
    fn gathering(&self, handle: &Handle) -> Option<(String, String, usize, Duration)> {
        let window = self.config.status_gather?;
        let Some(SweepBy::Ids { parent, id, chunk }) = self.api.sweep_by() else {
            return None;
        };
        if !self.api.gathers() {
            return None;
        }
        let group = match parent {
            Some(field) => handle.get_str(field)?,
            None => String::new(),
        };
        Some((group, handle.get_str(id)?, chunk, window))
    }

    /// A status read gathered with those asked within the window (see `gather`): read from
    /// the batch's answer as from one of its own; a batch that failed but for a transient
    /// reason, or was never sent, is read again alone.
    async fn gathered_status(
        &self,
        handle: &Handle,
        (group, id, chunk, window): (String, String, usize, Duration),
    ) -> Result<RemoteStatus, ProviderError> {
        let answer: Answer = match self.gather.join(&group, &id, chunk) {
            Joined::Opened(mut sending) => {
                let ids = sending.take(&id, window).await;
                let Some(call) = self.api.describe_ids(&group, ids) else {
                    return self.read_status(handle).await;
                };
                let answer = self.read(call).await.map(Arc::new);
                sending.answer(&answer);
                answer
            }
            Joined::Waits(rx) => match rx.await {
                Ok(answer) => answer,
                Err(_) => return self.read_status(handle).await,
            },
        };
        match answer {
            Ok(answer) => self.api.status(handle, &answer),
            Err(e) if e.kind == ErrorKind::Transient => Err(e),
            Err(_) => self.read_status(handle).await,
        }
    }

    /// One batched read for a sweep: the statuses found, by id.
    async fn read_ids(
        &self,
        parent: String,
        ids: Vec<String>,
    ) -> Result<super::walk::Found, ProviderError> {
        let Some(call) = self.api.describe_ids(&parent, ids) else {
            return Ok(Default::default());
        };
        let answer = self.read(call).await?;
        Ok(self.api.described(&answer).into_iter().collect())
    }
}

#[async_trait]
impl<A: JobApi> Provider for Kit<A> {
    fn kind(&self) -> &'static str {
        self.api.about().kind
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        self.api
            .check(spec)
            .map_err(|why| ProviderError::invalid_spec(self.api.about().kind, why))
    }

    async fn submit(&self, spec: &Value, key: &str, gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        self.api.before_start(&self.client, spec).await?;
        let call = self.api.start(spec, key);
        let idempotency = if self.api.about().start == Start::Deduplicated {
            // The service deduplicates by the token: the submit may be repeated ungated.
            Idempotency::Idempotent
        } else {
            Idempotency::NotIdempotent(gate)
        };
        let answer = match self.send(call, idempotency).await {
            Ok(answer) => answer,
            Err(refusal) => match self.api.adopt(spec, key, &refusal) {
                Some(handle) => {
                    tracing::info!(
                        provider = self.api.about().kind,
                        key,
                        "the job exists already: reattaching"
                    );
                    return Ok(Handle::new(handle));
                }
                None => return Err(refusal),
            },
        };
        Ok(Handle::new(self.api.started(spec, key, &answer)?))
    }

    fn submit_is_idempotent(&self) -> bool {
        self.api.about().start == Start::Deduplicated
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        match self.gathering(handle) {
            Some(at) => self.gathered_status(handle, at).await,
            None => self.read_status(handle).await,
        }
    }

    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let call = self.api.stop(handle)?;
        let op = call.op;
        let answer = self.read(call).await?;
        self.api
            .stopped(&answer)
            .map_err(|why| ProviderError::permanent(self.api.about().kind, format!("{op}: {why}")))
    }

    async fn find(&self, key: &str, spec: &Value, _intent_ms: i64) -> Result<Vec<Handle>> {
        if let Some(named) = self.api.named(spec, key) {
            let handle = Handle::new(named);
            return match self.status(&handle).await {
                Ok(_) => Ok(vec![handle]),
                Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e),
            };
        }
        let Some(listing) = self.api.find(spec, key) else {
            return Ok(Vec::new());
        };
        let pick = |entry: &Value| {
            let (handle, created) = self.api.found(spec, key, entry)?;
            Some((Handle::new(handle), created))
        };
        let mut found = find_in_pages(
            self.config.find_max_pages,
            listing.items,
            listing.next,
            self.find_pages(&listing),
            pick,
        )
        .await?;
        // A job listed twice (pages that moved under the listing) is one job.
        let mut seen = std::collections::HashSet::new();
        found.retain(|h| seen.insert(h.clone()));
        Ok(found)
    }

    async fn status_many(&self, jobs: &[Tracked<'_>]) -> Result<Sweep, ProviderError> {
        match self.api.sweep_by() {
            None => Ok(Sweep {
                statuses: vec![None; jobs.len()],
                calls: 0,
            }),
            Some(SweepBy::List { parent, id }) => {
                sweep(jobs, (parent, id), |group| self.list_group(group)).await
            }
            Some(SweepBy::Ids { parent, id, chunk }) => {
                sweep_by_ids(jobs, (parent, id), chunk, |parent, ids| {
                    self.read_ids(parent, ids)
                })
                .await
            }
        }
    }

    fn coalesces(&self) -> bool {
        self.config.common.coalesce
    }

    /// Batched reads by id cost the same cut in parts (the calls a whole sweep makes at
    /// once); a list call reads a whole group, so those sweeps stay whole.
    fn sweep_part(&self) -> Option<usize> {
        match self.api.sweep_by() {
            Some(SweepBy::Ids { chunk, .. }) => Some(chunk * super::walk::SWEEP_PARALLEL),
            _ => None,
        }
    }

    /// The remote job's own id, as the service's EventBridge events name it (the handle's
    /// field [`super::About::reference`]); a handle without it (none tether made) falls back
    /// to the handle's JSON, which no event names.
    fn handle_ref(&self, handle: &Handle) -> String {
        handle
            .get_str(self.api.about().reference)
            .unwrap_or_else(|| handle.as_json().to_string())
    }

    fn settings(&self) -> &tether_provider::CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}
