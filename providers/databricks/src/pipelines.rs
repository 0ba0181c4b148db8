//! The `databricks-pipeline` kind: an update of a pipeline (Lakeflow Declarative Pipelines,
//! formerly Delta Live Tables).
//!
//! - submit: `POST /api/2.0/pipelines/{pipeline_id}/updates` with the spec's options
//!   (`full_refresh`, `refresh_selection`, ...); the handle is `{pipeline_id, update_id}`;
//! - status: `GET /api/2.0/pipelines/{pipeline_id}/updates/{update_id}`; a failed update's
//!   message is the newest `ERROR` event of the pipeline's event log that names the update;
//! - cancel: `POST /api/2.0/pipelines/{pipeline_id}/stop`, which stops the pipeline's active
//!   update, so it is sent only while the update read last is still ours and unfinished;
//! - find: an update has no idempotency token and carries nothing tether could tag it with,
//!   but a pipeline refuses a second update while one is active, and the update's record keeps
//!   the request's selection. So a lost answer is reconciled by listing the pipeline's updates
//!   (`GET .../updates`, newest first) for the one started through the API (`cause`
//!   `API_CALL`) with the spec's selection (`full_refresh`, `refresh_selection`,
//!   `full_refresh_selection`, `validate_only`), created between the intent and this look
//!   (give or take [`FIND_SKEW_MS`], the clocks' skew), nearest the intent: tether submits
//!   right after recording its intent, while an earlier update (a failed generation) or a
//!   later one (someone's, after this one ended) lies further from it. At most one, never a
//!   second update started blindly. What it cannot tell apart: another actor's API update of
//!   the same selection started in that window while tether's request made none.
//!
//! tether's key travels in the `User-Agent` of the submission (`tether/VERSION
//! tether-key/KEY`), which a workspace's audit log keeps: a person can trace an update to its
//! task. Nothing in tether reads it back.
//!
//! Reference: <https://docs.databricks.com/api/workspace/pipelines>

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tether_provider::http::Idempotency;
use tether_provider::paging::{walk, Page};
use tether_provider::{
    CommonSettings, Handle, JobState, Provider, ProviderError, RemoteStatus, Result, SendGate,
};

use crate::client::{answered_id, is_id, with_page_token, Call, Client};
use crate::{spec, state, DatabricksConfig};

/// The kind, as in config and errors.
pub const KIND: &str = "databricks-pipeline";

/// How far an update's `creation_time` (the workspace's clock) may lie outside the window in
/// which tether may have started it (its own clock) and still be the one it started: the two
/// clocks' skew, as the SQL kind's history search allows.
pub const FIND_SKEW_MS: i64 = crate::CLOCK_SKEW_MS;

/// Updates asked for per page of the list.
const LIST_PAGE: usize = 25;

/// The fields of the `updates` request body a spec may set (databricks-sdk's `start_update`).
const BODY_FIELDS: &[&str] = &[
    "cause",
    "full_refresh",
    "full_refresh_selection",
    "parameters",
    "refresh_flow_selection",
    "refresh_selection",
    "replace_where_overrides",
    "reset_checkpoint_selection",
    "rewind_spec",
    "validate_only",
];

/// An update, as `GET .../updates/{id}` and `GET .../updates` return it (only the fields
/// tether reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateInfo {
    /// The update's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
    /// Its pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    /// `QUEUED`, `CREATED`, ..., `COMPLETED`, `FAILED`, `CANCELED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When it was created, in ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    /// What started it: `API_CALL`, `USER_ACTION`, `JOB_TASK`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The request's selection, as the record keeps it (`UpdateInfo` of databricks-sdk's
    /// `pipelines.py`): what `find` compares with the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_refresh: Option<bool>,
    /// Tables refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_selection: Option<Vec<String>>,
    /// Tables fully refreshed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_refresh_selection: Option<Vec<String>>,
    /// Whether it only validates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate_only: Option<bool>,
}

impl UpdateInfo {
    /// Whether the record's selection is the one `spec` asks for (absent fields as their
    /// defaults: false, no tables).
    pub fn selects_as(&self, spec: &Value) -> bool {
        let flag = |v: Option<bool>, k: &str| {
            v.unwrap_or(false) == spec.get(k).and_then(Value::as_bool).unwrap_or(false)
        };
        let tables = |v: &Option<Vec<String>>, k: &str| {
            let mut have: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
            let mut want: Vec<&str> = spec
                .get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            have.sort_unstable();
            want.sort_unstable();
            have == want
        };
        flag(self.full_refresh, "full_refresh")
            && flag(self.validate_only, "validate_only")
            && tables(&self.refresh_selection, "refresh_selection")
            && tables(&self.full_refresh_selection, "full_refresh_selection")
    }
}

/// `GET .../updates/{update_id}`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GetUpdateResponse {
    /// The update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateInfo>,
}

/// A page of `GET .../updates`, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListUpdatesResponse {
    /// The updates.
    #[serde(default)]
    pub updates: Vec<UpdateInfo>,
    /// The next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// An event of a pipeline's event log (only the fields tether reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PipelineEvent {
    /// `INFO`, `WARN`, `ERROR`, `METRICS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where it comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// `origin` of an event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Origin {
    /// The update the event belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<String>,
}

/// A page of `GET .../events`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EventsPage {
    /// The events, newest first.
    #[serde(default)]
    pub events: Vec<PipelineEvent>,
}

#[derive(Debug, Deserialize)]
struct StartUpdateResponse {
    update_id: Option<String>,
}

/// The `databricks-pipeline` adapter.
#[derive(Debug)]
pub struct DatabricksPipeline {
    client: Client,
    config: DatabricksConfig,
}

impl DatabricksPipeline {
    /// An adapter for the configured workspace.
    pub fn new(config: DatabricksConfig) -> Result<Self, ProviderError> {
        let client = Client::for_config(&config)?;
        Ok(Self { client, config })
    }

    fn path(pipeline_id: &str, rest: &str) -> String {
        format!("/api/2.0/pipelines/{pipeline_id}{rest}")
    }

    /// `GET .../updates/{update_id}`:
    /// <https://docs.databricks.com/api/workspace/pipelines/getupdate>
    async fn get_update(&self, ids: &Ids) -> Result<UpdateInfo, ProviderError> {
        let path = Self::path(&ids.pipeline, &format!("/updates/{}", ids.update));
        let got: GetUpdateResponse = self.client.get(&path, &[]).await?;
        got.update.ok_or_else(|| {
            ProviderError::transient(KIND, format!("{path}: the answer holds no update"))
        })
    }

    /// The newest `ERROR` event naming the update: why it failed. Best effort: a failure to
    /// read the event log leaves the message out.
    ///
    /// <https://docs.databricks.com/api/workspace/pipelines/listpipelineevents>
    async fn failure_message(&self, ids: &Ids) -> Option<String> {
        let path = Self::path(&ids.pipeline, "/events");
        let query = [
            ("filter", "level='ERROR'".into()),
            ("max_results", "100".into()),
        ];
        let page: Result<EventsPage, _> = self.client.get(&path, &query).await;
        match page {
            Ok(page) => page
                .events
                .into_iter()
                .find(|e| {
                    e.origin.as_ref().and_then(|o| o.update_id.as_deref())
                        == Some(ids.update.as_str())
                })
                .and_then(|e| e.message),
            Err(e) => {
                tracing::warn!(provider = KIND, pipeline_id = %ids.pipeline, update_id = %ids.update, error = %e, "could not read the pipeline's error events");
                None
            }
        }
    }
}

/// What a handle names.
struct Ids {
    pipeline: String,
    update: String,
}

fn ids(handle: &Handle) -> Result<Ids, ProviderError> {
    match (handle.get_str("pipeline_id"), handle.get_str("update_id")) {
        (Some(pipeline), Some(update)) if is_id(&pipeline) && is_id(&update) => {
            Ok(Ids { pipeline, update })
        }
        _ => Err(ProviderError::permanent(
            KIND,
            format!("handle {handle} has no pipeline_id and update_id"),
        )),
    }
}

fn pipeline_id(spec: &Value) -> Option<&str> {
    spec.get("pipeline_id").and_then(Value::as_str)
}

/// Why `spec` is not an update's spec, if it is not.
fn check(spec: &Value) -> Result<(), String> {
    let obj = spec::object(spec, "pipeline_id and the update's options")?;
    spec::id_field(
        obj,
        "pipeline_id",
        "a pipeline's id (letters, digits and dashes)",
    )?;
    let takes = |k: &str| k == "pipeline_id" || BODY_FIELDS.contains(&k);
    if let Some(unknown) = spec::unknown_fields(obj, takes) {
        return Err(format!(
            "unknown field(s) {unknown}: a pipeline update takes pipeline_id and {}",
            BODY_FIELDS.join(", ")
        ));
    }
    for flag in ["full_refresh", "validate_only"] {
        if obj.get(flag).is_some_and(|v| !v.is_boolean()) {
            return Err(format!("{flag} must be true or false"));
        }
    }
    Ok(())
}

/// The User-Agent of a submission: tether's, with the key (kept by the audit log).
fn user_agent(key: &str) -> String {
    format!("tether/{} tether-key/{key}", env!("CARGO_PKG_VERSION"))
}

#[async_trait]
impl Provider for DatabricksPipeline {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn validate_spec(&self, spec: &Value) -> Result<(), ProviderError> {
        check(spec).map_err(|why| ProviderError::invalid_spec(KIND, why))
    }

    /// `POST /api/2.0/pipelines/{id}/updates`:
    /// <https://docs.databricks.com/api/workspace/pipelines/startupdate>. Not idempotent: sent
    /// through `gate`.
    async fn submit(&self, spec: &Value, key: &str, gate: &dyn SendGate) -> Result<Handle> {
        self.validate_spec(spec)?;
        let pipeline = pipeline_id(spec).expect("validated").to_string();
        let body: Map<String, Value> = spec
            .as_object()
            .expect("validated")
            .iter()
            .filter(|(k, _)| *k != "pipeline_id")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let agent = user_agent(key);
        let path = Self::path(&pipeline, "/updates");
        let started: StartUpdateResponse = self
            .client
            .call(
                &path,
                Call::Submit,
                Idempotency::NotIdempotent(gate),
                |c, url| {
                    c.post(url)
                        .header(reqwest::header::USER_AGENT, &agent)
                        .json(&body)
                },
            )
            .await?;
        let update = answered_id(KIND, &path, "update_id", started.update_id)?;
        Ok(Handle::new(
            json!({ "pipeline_id": pipeline, "update_id": update }),
        ))
    }

    fn submit_is_idempotent(&self) -> bool {
        false
    }

    /// The `update_id`. Pipeline updates send no webhook notifications (a pipeline's
    /// `notifications` are e-mail alerts), so nothing names one by it but `POST /v1/events/poke`;
    /// the update id is what its event log (`origin.update_id`) and the UI name it by.
    fn handle_ref(&self, handle: &Handle) -> String {
        handle
            .get_str("update_id")
            .unwrap_or_else(|| handle.as_json().to_string())
    }

    async fn status(&self, handle: &Handle) -> Result<RemoteStatus, ProviderError> {
        let ids = ids(handle)?;
        let update = self.get_update(&ids).await?;
        let mut status = state::read_state(
            KIND,
            &ids.update,
            update.state.as_deref(),
            state::update_state,
        );
        if status.state == JobState::Failed {
            status.message = self.failure_message(&ids).await;
        }
        status.url = self.job_url(handle);
        Ok(status)
    }

    /// `POST /api/2.0/pipelines/{id}/stop`:
    /// <https://docs.databricks.com/api/workspace/pipelines/stop>. It stops whichever update
    /// is active, so it is sent only if this one has not ended.
    async fn cancel(&self, handle: &Handle) -> Result<(), ProviderError> {
        let ids = ids(handle)?;
        let update = self.get_update(&ids).await?;
        if update
            .state
            .as_deref()
            .and_then(state::update_state)
            .is_some_and(JobState::is_terminal)
        {
            return Ok(());
        }
        let path = Self::path(&ids.pipeline, "/stop");
        self.client.post_idempotent(&path, None).await
    }

    /// The update of the spec's pipeline started through the API nearest the intent, no
    /// earlier than [`FIND_SKEW_MS`] before it: `GET .../updates`, newest first, page after
    /// page until the updates are older than that.
    ///
    /// <https://docs.databricks.com/api/workspace/pipelines/listupdates>
    async fn find(&self, _key: &str, spec: &Value, intent_ms: i64) -> Result<Vec<Handle>> {
        let Some(pipeline) = pipeline_id(spec).filter(|p| is_id(p)) else {
            return Ok(Vec::new());
        };
        // tether started its update after its intent and before this look (its submitter's
        // lease ran out before anyone reconciles): an update created outside that window, give
        // or take the clocks' skew, or with another selection than the spec's, is someone
        // else's.
        let since = intent_ms.saturating_sub(FIND_SKEW_MS);
        let until = crate::now_ms().saturating_add(FIND_SKEW_MS);
        let path = Self::path(pipeline, "/updates");
        // (distance from the intent, update id)
        let fetch = |token: Option<String>| {
            let path = &path;
            async move {
                let q = with_page_token(vec![("max_results", LIST_PAGE.to_string())], token);
                let page: ListUpdatesResponse = self.client.get(path, &q).await?;
                // Newest first: a page that reaches an update older than the window is the
                // last one read.
                let older_seen = page
                    .updates
                    .iter()
                    .any(|u| u.creation_time.is_some_and(|created| created < since));
                let next = page
                    .next_page_token
                    .filter(|_| !older_seen && !page.updates.is_empty());
                Ok(Page::new(page.updates, next))
            }
        };
        // (distance from the intent, update id)
        let mut nearest: Option<(i64, String)> = None;
        walk(u64::from(self.config.find_max_pages), fetch, |update| {
            let Some(created) = update.creation_time else {
                return true;
            };
            let by_api = update.cause.as_deref().is_none_or(|c| c == "API_CALL");
            let ours = created >= since && by_api && created <= until && update.selects_as(spec);
            let distance = (created - intent_ms).abs();
            if let (true, Some(id)) = (ours, update.update_id.as_ref()) {
                if nearest.as_ref().is_none_or(|(d, _)| distance < *d) {
                    nearest = Some((distance, id.clone()));
                }
            }
            true
        })
        .await?;
        Ok(nearest
            .into_iter()
            .map(|(_, update)| Handle::new(json!({ "pipeline_id": pipeline, "update_id": update })))
            .collect())
    }

    fn job_url(&self, handle: &Handle) -> Option<String> {
        let ids = ids(handle).ok()?;
        Some(format!(
            "{}/#joblist/pipelines/{}/updates/{}",
            self.client.host(),
            ids.pipeline,
            ids.update
        ))
    }

    fn settings(&self) -> &CommonSettings {
        &self.config.common
    }

    fn rate_limiter(&self) -> Option<&tether_provider::RateLimiter> {
        Some(self.client.http().limiter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_ref_is_the_update_id() {
        let adapter = DatabricksPipeline::new(DatabricksConfig::for_tests(KIND)).unwrap();
        let handle = Handle::new(json!({"pipeline_id": "p1", "update_id": "u-1"}));
        assert_eq!(adapter.handle_ref(&handle), "u-1");
        assert!(adapter.webhook().is_none());
    }

    #[test]
    fn specs_are_checked() {
        let p = DatabricksPipeline::new(DatabricksConfig::for_tests(KIND)).unwrap();
        let ok = json!({"pipeline_id": "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "full_refresh": true,
            "refresh_selection": ["a"]});
        assert!(p.validate_spec(&ok).is_ok());
        for (bad, says) in [
            (json!([]), "JSON object"),
            (json!({}), "needs pipeline_id"),
            (json!({"pipeline_id": "../jobs"}), "pipeline_id must be"),
            (json!({"pipeline_id": 7}), "pipeline_id must be"),
            (
                json!({"pipeline_id": "p1", "full_refesh": true}),
                "full_refesh",
            ),
            (
                json!({"pipeline_id": "p1", "full_refresh": "yes"}),
                "full_refresh must be",
            ),
        ] {
            let err = p.validate_spec(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
