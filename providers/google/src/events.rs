//! The job events of the Google kinds, as tether reads them: Cloud Logging entries that a
//! log sink routes to a Pub/Sub topic ([`read_message`] takes one Pub/Sub message, whose
//! `data` is the `LogEntry` as JSON) turned into a [`Reading`].
//!
//! - BigQuery (audit logs, `BigQueryAuditMetadata`): an entry of `resource.type`
//!   `bigquery_project` whose `protoPayload.metadata.jobChange` names the job
//!   (`job.jobName`, `projects/P/jobs/ID`) and its new state (`after`: `PENDING`, `RUNNING`,
//!   `DONE`); the location is `resource.labels.location`. The older format
//!   (`AuditData`, `resource.type` `bigquery_resource`, `jobservice.jobcompleted`) names the job
//!   in `serviceData.jobCompletedEvent.job.jobName {projectId, jobId, location}`, always done.
//!   The method is not pinned (a job made through `jobs.query` logs `JobService.Query`).
//! - Dataproc documents no job state-change entry: an entry of `resource.type`
//!   `cloud_dataproc_job` or `cloud_dataproc_batch` (its audit log, the driver's output)
//!   names the job or batch in its resource labels and is read as a wake-up without a state,
//!   which the engine confirms with a status call like any event.
//!
//! Reference: <https://cloud.google.com/bigquery/docs/reference/auditlogs>,
//! googleapis `google/cloud/audit/bigquery_audit_metadata.proto`,
//! `google/cloud/bigquery/logging/v1/audit_data.proto`,
//! <https://cloud.google.com/logging/docs/api/v2/resource-list>.

use base64::Engine as _;
use serde_json::Value;
use tether_provider::events::{Hint, Reading};

use crate::{bigquery, dataproc};

/// A BigQuery job's reference, as its events name it and `handle_ref` gives it.
pub fn bigquery_ref(project: &str, job_id: &str) -> String {
    format!("projects/{project}/jobs/{job_id}")
}

/// A Dataproc job's reference.
pub fn dataproc_job_ref(project: &str, region: &str, job_id: &str) -> String {
    format!("projects/{project}/regions/{region}/jobs/{job_id}")
}

/// A Dataproc Serverless batch's reference (its resource name).
pub fn dataproc_batch_ref(project: &str, location: &str, batch_id: &str) -> String {
    format!("projects/{project}/locations/{location}/batches/{batch_id}")
}

/// What one Pub/Sub message (`{"data": base64, "attributes", "messageId", "publishTime"}`)
/// says, or why it cannot be read.
pub fn read_message(message: &Value) -> Result<Reading, String> {
    let data = message["data"]
        .as_str()
        .ok_or("the message has no data (a log sink's message carries the LogEntry there)")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("the message's data is not base64 ({e})"))?;
    let entry: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the message's data is not JSON ({e})"))?;
    if !entry.is_object() {
        return Err("the message's data is not a LogEntry (a JSON object)".into());
    }
    Ok(read_entry(&entry))
}

/// What one `LogEntry` says.
pub fn read_entry(entry: &Value) -> Reading {
    let resource = entry["resource"]["type"].as_str().unwrap_or("");
    let labels = &entry["resource"]["labels"];
    let label = |k: &str| labels[k].as_str().filter(|v| !v.is_empty());
    let at_ms = entry["timestamp"].as_str().and_then(parse_rfc3339_ms);
    let payload = &entry["protoPayload"];
    let change = &payload["metadata"]["jobChange"];
    if let Some(name) = change["job"]["jobName"].as_str() {
        let Some((project, job_id)) = name
            .strip_prefix("projects/")
            .and_then(|rest| rest.split_once("/jobs/"))
        else {
            return Reading::Foreign(format!("a BigQuery jobChange naming {name:?}"));
        };
        let state = change["after"]
            .as_str()
            .or(change["job"]["jobStatus"]["jobState"].as_str())
            .map(str::to_string);
        let progress = matches!(state.as_deref(), Some("PENDING" | "RUNNING"));
        return Reading::Hint(Hint {
            kind: bigquery::KIND,
            reference: bigquery_ref(project, job_id),
            region: None,
            at_ms,
            state,
            progress,
        });
    }
    let completed = &payload["serviceData"]["jobCompletedEvent"]["job"]["jobName"];
    if let (Some(project), Some(job_id)) =
        (completed["projectId"].as_str(), completed["jobId"].as_str())
    {
        return Reading::Hint(Hint {
            kind: bigquery::KIND,
            reference: bigquery_ref(project, job_id),
            region: None,
            at_ms,
            state: Some("DONE".into()),
            progress: false,
        });
    }
    match (resource, label("project_id")) {
        ("cloud_dataproc_job", Some(project)) => {
            if let (Some(region), Some(job_id)) = (label("region"), label("job_id")) {
                return wake_up(
                    dataproc::JOB_KIND,
                    dataproc_job_ref(project, region, job_id),
                    at_ms,
                );
            }
        }
        ("cloud_dataproc_batch", Some(project)) => {
            if let (Some(location), Some(batch_id)) = (label("location"), label("batch_id")) {
                return wake_up(
                    dataproc::BATCH_KIND,
                    dataproc_batch_ref(project, location, batch_id),
                    at_ms,
                );
            }
        }
        _ => {}
    }
    let method = payload["methodName"].as_str().unwrap_or("-");
    Reading::Foreign(format!(
        "a log entry of {resource:?} ({method}) naming no job"
    ))
}

/// An event that names a job and no state: polled at once, as an end may be behind it.
fn wake_up(kind: &'static str, reference: String, at_ms: Option<i64>) -> Reading {
    Reading::Hint(Hint {
        kind,
        reference,
        region: None,
        at_ms,
        state: None,
        progress: false,
    })
}

/// `2026-12-07T19:00:03.901Z` (or with an offset) in ms since the Unix epoch.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(entry: &Value) -> Value {
        let data = base64::engine::general_purpose::STANDARD.encode(entry.to_string());
        json!({"data": data, "messageId": "1", "attributes": {"logging.googleapis.com/timestamp": "2026-12-07T19:00:03.901Z"}})
    }

    fn hint(reading: Reading) -> Hint {
        match reading {
            Reading::Hint(h) => h,
            other => panic!("not a hint: {other:?}"),
        }
    }

    #[test]
    fn a_bigquery_job_change_names_the_job_and_its_state() {
        let entry = json!({
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "methodName": "google.cloud.bigquery.v2.JobService.InsertJob",
                "metadata": {
                    "@type": "type.googleapis.com/google.cloud.audit.BigQueryAuditMetadata",
                    "jobChange": {"before": "RUNNING", "after": "DONE", "job": {
                        "jobName": "projects/my-proj/jobs/tether-7f3c",
                        "jobStatus": {"jobState": "DONE", "errorResult": {"code": 3, "message": "Syntax error"}},
                    }},
                },
            },
            "resource": {"type": "bigquery_project", "labels": {"project_id": "my-proj", "location": "US"}},
            "timestamp": "2026-12-07T19:00:03.901Z",
        });
        let h = hint(read_message(&message(&entry)).unwrap());
        assert_eq!(h.kind, "bigquery");
        assert_eq!(h.reference, "projects/my-proj/jobs/tether-7f3c");
        assert_eq!(h.state.as_deref(), Some("DONE"));
        assert!(!h.progress);
        assert_eq!(h.at_ms, Some(1_796_670_003_901));
        let mut running = entry.clone();
        running["protoPayload"]["metadata"]["jobChange"]["after"] = json!("RUNNING");
        assert!(hint(read_entry(&running)).progress);
    }

    #[test]
    fn the_older_job_completed_entry_is_read_too() {
        let entry = json!({
            "protoPayload": {"methodName": "jobservice.jobcompleted", "serviceData": {"jobCompletedEvent": {
                "eventName": "query_job_completed",
                "job": {"jobName": {"projectId": "my-proj", "jobId": "tether-1", "location": "EU"},
                        "jobStatus": {"state": "DONE"}}}}},
            "resource": {"type": "bigquery_resource", "labels": {"project_id": "my-proj"}},
        });
        let h = hint(read_entry(&entry));
        assert_eq!(h.reference, "projects/my-proj/jobs/tether-1");
        assert_eq!(h.state.as_deref(), Some("DONE"));
    }

    #[test]
    fn dataproc_entries_wake_their_job_up() {
        let job = json!({"resource": {"type": "cloud_dataproc_job",
            "labels": {"project_id": "p1-project", "region": "us-central1", "job_id": "tether-2", "job_uuid": "u"}}});
        let h = hint(read_entry(&job));
        assert_eq!(
            (h.kind, h.reference.as_str()),
            (
                "dataproc-job",
                "projects/p1-project/regions/us-central1/jobs/tether-2"
            )
        );
        assert_eq!(h.state, None);
        assert!(!h.progress);
        let batch = json!({"resource": {"type": "cloud_dataproc_batch",
            "labels": {"project_id": "p1-project", "location": "us-central1", "batch_id": "tether-3"}}});
        assert_eq!(
            hint(read_entry(&batch)).reference,
            "projects/p1-project/locations/us-central1/batches/tether-3"
        );
    }

    #[test]
    fn foreign_and_broken_messages_are_named() {
        let other = json!({"resource": {"type": "gce_instance"}, "protoPayload": {"methodName": "v1.compute.instances.insert"}});
        assert!(
            matches!(read_entry(&other), Reading::Foreign(ref t) if t.contains("gce_instance"))
        );
        assert!(read_message(&json!({})).unwrap_err().contains("no data"));
        assert!(read_message(&json!({"data": "%%%"}))
            .unwrap_err()
            .contains("not base64"));
        let not_json = base64::engine::general_purpose::STANDARD.encode("hello");
        assert!(read_message(&json!({"data": not_json}))
            .unwrap_err()
            .contains("not JSON"));
        let odd_name =
            json!({"protoPayload": {"metadata": {"jobChange": {"job": {"jobName": "jobs/x"}}}}});
        assert!(matches!(read_entry(&odd_name), Reading::Foreign(_)));
    }
}
