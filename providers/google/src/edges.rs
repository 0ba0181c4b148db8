//! The edge catalog of each Google kind (see [`tether_provider::edges`]), from Google's own
//! models and documentation: googleapis' protos (`google/cloud/bigquery/v2`), BigQuery's
//! discovery document (as the Google Cloud CLI carries it, `platform/bq/discovery_next`), the
//! REST reference, and what Google's own clients (`google-cloud-bigquery`, `bq`) do; and
//! `google/cloud/dataproc/v1` (`jobs.proto`, `batches.proto`), `google/longrunning`, and
//! the Google Cloud CLI's `gcloud dataproc` and `google-cloud-dataproc`.

use std::time::Duration;

use tether_provider::edges::{Edge, Edges, Topic, UNDOCUMENTED_GRACE};

/// The catalog of `kind` (one of [`crate::factory::KINDS`]).
pub fn of(kind: &str) -> &'static Edges {
    match kind {
        crate::dataproc::JOB_KIND => &DATAPROC_JOB,
        crate::dataproc::BATCH_KIND => &DATAPROC_BATCH,
        _ => &BIGQUERY,
    }
}

/// What the events of every Google kind share: a log sink's routing and Pub/Sub's delivery
/// (the simulator's lost, repeated and delayed entries, `sim/events.rs`).
const EVENT_DELIVERY: Edge = Edge {
    topic: Topic::Other,
    says: "a Cloud Logging sink routes the log entries its filter matches to a Pub/Sub topic as they are ingested; Pub/Sub delivers each message at least once per subscription, in no guaranteed order unless ordering keys are used, and an unacknowledged message again after its ack deadline",
    tether: "an entry is a hint: the job it names is polled at once and only the poll is recorded; a lost entry leaves the job to its poll cadence, a repeated or late one costs one poll; a pull is never cut short (a message leased to an abandoned pull returns only after the ack deadline)",
    source: "Cloud Logging, route logs to Pub/Sub (https://cloud.google.com/logging/docs/export/pubsub); Pub/Sub subscriber overview, at-least-once delivery (https://cloud.google.com/pubsub/docs/subscriber); googleapis google/pubsub/v1/pubsub.proto PullRequest, AcknowledgeRequest",
};

/// BigQuery jobs.
pub static BIGQUERY: Edges = Edges {
    kind: "bigquery",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(180 * 86_400)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented; Google's Python client retries a jobs.get that answers 404 after an insert's 409 (\"Sometimes we get a 404 after a Conflict\") for up to 200 s",
            tether: "a \"not found\" within not_found_grace (2 minutes) of the handle is not an end; a job not listed by a sweep is read with jobs.get",
            source: "googleapis/python-bigquery google/cloud/bigquery/_job_helpers.py (_DEFAULT_GET_JOB_CONFLICT_RETRY, issue #2134)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"Job information is available for a six month period after creation\" (jobs.get, jobs.list); whether a job id stays taken after that is not documented",
            tether: "forgotten_after defaults to 180 days; a job seen and then gone is outcome_unknown; ids are never reused (a new generation has a new key)",
            source: "BigQuery discovery document jobs.get, jobs.list; google/cloud/bigquery/v2/job.proto GetJob, ListJobs",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "jobReference.jobId is the caller's to choose (\"to allow reliable retry of the jobs.insert call\"); a second insert of the id answers 409 with the reason duplicate (\"Already Exists: Job P:LOC.ID\"), also when the job has ended; its scope is the project (an id taken in one location is taken in all, by a third-party report)",
            tether: "the job id is the key (tether-, then 32 hex digits): an insert whose answer was lost is sent again with it, and a 409 duplicate is the job already made, never a failure",
            source: "google/cloud/bigquery/v2/job_reference.proto; https://cloud.google.com/bigquery/docs/running-jobs; https://cloud.google.com/bigquery/docs/error-messages (duplicate); googleapis/google-cloud-java #14025",
        },
        Edge {
            topic: Topic::Names,
            says: "jobId: \"letters (a-z, A-Z), numbers (0-9), underscores (_), or dashes (-)\", at most 1,024 characters; location: \"The default value is US\"; a job outside the US and EU multi-regions is read, cancelled and its results fetched only with its location: without it, or with another, jobs.get answers 404 notFound",
            tether: "every job is made with a location (the spec's jobReference.location, else the account's, which is required) and its handle keeps the location BigQuery answered, so every read names it",
            source: "google/cloud/bigquery/v2/job_reference.proto; BigQuery discovery document jobs.get (location)",
        },
        Edge {
            topic: Topic::Filters,
            says: "jobs.list filters by stateFilter (done, pending, running; repeated), minCreationTime and maxCreationTime (ms, inclusive), allUsers and parentJobId only, not by label; it lists newest first, only the caller's jobs unless allUsers, and a page may leave out unreachable locations (JobList.unreachable)",
            tether: "a sweep lists the project's pending and running jobs created since its oldest tracked job less 5 minutes of clock skew, and matches them by id; a job a sweep does not list is read with jobs.get, so an ended job's end, or one a page left out, is always confirmed by a read of its own",
            source: "BigQuery discovery document jobs.list; google/cloud/bigquery/v2/job.proto ListJobsRequest, ListFormatJob",
        },
        Edge {
            topic: Topic::Limits,
            says: "jobs.list maxResults has no documented maximum",
            tether: "sweeps ask 1,000 jobs a page and follow nextPageToken",
            source: "BigQuery discovery document jobs.list (maxResults)",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "backendError (500, 502, 503, 504): \"it's unclear if the job succeeded\" when jobs.insert fails so; jobBackendError and jobInternalError (400) are jobs that were made and failed",
            tether: "an insert is repeated with the same job id after a 5xx or a lost connection (409 duplicate then names the job); a failed job is read as failed from jobs.get, never inserted again by tether",
            source: "https://cloud.google.com/bigquery/docs/error-messages",
        },
        Edge {
            topic: Topic::Throttling,
            says: "rateLimitExceeded answers 403 (not 429), as quotaExceeded does for a rate quota: \"retry the operation after a few seconds. Use exponential backoff\"",
            tether: "403 rateLimitExceeded and quotaExceeded are throttling, like 429: waited out and sent again, the account's rate limiter paused",
            source: "https://cloud.google.com/bigquery/docs/error-messages (rateLimitExceeded, quotaExceeded)",
        },
        Edge {
            topic: Topic::Other,
            says: "jobs.cancel \"will return immediately, and the client will need to poll for the job status to see if the cancel completed successfully\"; a cancelled job ends DONE with errorResult.reason stopped, one that finished first ends as it would have; jobTimeoutMs: BigQuery \"may not always succeed in canceling it before the job completes\"",
            tether: "a cancel is sent and the job polled until DONE: stopped reads cancelled, another reason failed, none succeeded",
            source: "google/cloud/bigquery/v2/job.proto CancelJob; BigQuery discovery document JobConfiguration.jobTimeoutMs",
        },
        Edge {
            topic: Topic::Other,
            says: "BigQuery's audit log writes a jobChange entry (BigQueryAuditMetadata) when a job changes state, naming the job (projects/P/jobs/ID) and its state before and after",
            tether: "a jobChange to DONE marks the job due now; PENDING and RUNNING are progress, left to polling",
            source: "googleapis google/cloud/audit/bigquery_audit_metadata.proto (JobChange); BigQuery audit logs reference (https://cloud.google.com/bigquery/docs/reference/auditlogs)",
        },
        EVENT_DELIVERY,
    ],
};

/// Dataproc's consistency edge, the same for jobs and batches.
const DATAPROC_CONSISTENCY: Edge = Edge {
    topic: Topic::Consistency,
    says: "not documented; gcloud reads a job or batch right after submitting it and fails on a 4xx, so reads are expected to answer at once",
    tether: "a \"not found\" within not_found_grace (2 minutes) of the handle is not an end",
    source: "google-cloud-sdk googlecloudsdk/command_lib/dataproc/jobs/submitter.py, batches/batch_poller.py",
};

/// Dataproc's throttling, the same for jobs and batches.
const DATAPROC_THROTTLING: Edge = Edge {
    topic: Topic::Throttling,
    says: "429 RESOURCE_EXHAUSTED over a quota (per project and region a minute: job submit/cancel/delete 400, GetJob 7,500, CreateBatch 200, operations cancel 200)",
    tether: "not processed: waits for Retry-After (or a pause) and sends again; the account's rate limiter pauses",
    source: "https://cloud.google.com/dataproc/quotas; https://cloud.google.com/dataproc-serverless/quotas",
};

/// Dataproc's errors after which a request may have run, the same for jobs and batches.
const DATAPROC_MAY_HAVE_RUN: Edge = Edge {
    topic: Topic::MayHaveRun,
    says: "500 INTERNAL, 503 UNAVAILABLE, 504 DEADLINE_EXCEEDED and a lost connection say nothing of whether a submit ran; Google's clients send it again with the same request id (google-cloud-dataproc retries SubmitJob on 503, gcloud any 5xx five times)",
    tether: "a submit is sent again with the same request id and job or batch id: Dataproc answers the first job, or 409 ALREADY_EXISTS for the id, which is that job",
    source: "google-cloud-dataproc job_controller/transports/base.py (retry); google-cloud-sdk apitools http_wrapper",
};

/// Dataproc jobs on a cluster.
pub static DATAPROC_JOB: Edges = Edges {
    kind: "dataproc-job",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        DATAPROC_CONSISTENCY,
        Edge {
            topic: Topic::Retention,
            says: "not documented: a job is kept until it is deleted (jobs.delete of an active job fails FAILED_PRECONDITION); a deleted job's id may be taken again (jobUuid \"uniquely identifies a job within the project over time\", in contrast to a reference.job_id that \"might be reused over time\")",
            tether: "forgotten_after has no bound by default; a job seen and then gone (deleted) is outcome_unknown",
            source: "google/cloud/dataproc/v1/jobs.proto Job.job_uuid, DeleteJob",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "requestId (at most 40 letters, digits, _ and -): \"If the server receives two SubmitJobRequests with the same id, then the second request will be ignored and the first Job created and stored in the backend is returned\", with no documented lifetime, even when that job has ended (Airflow's caveat: a retry with the same request id is handed the earlier, finished job); reference.jobId must be unique within the project: the same id with another request id answers 409 ALREADY_EXISTS",
            tether: "the request id and the job id are both the key (or t and 39 hex digits of its SHA-256 where the key does not fit): a lost answer is sent again with them, and 409 for the id is the job made before; a new generation has a new key, so it is never handed the old job",
            source: "google/cloud/dataproc/v1/jobs.proto SubmitJobRequest.request_id, JobReference.job_id; apache/airflow #72417, #72685",
        },
        Edge {
            topic: Topic::Names,
            says: "reference.jobId: letters, digits, underscores and hyphens, at most 100 characters; reference.projectId, if given, must be the request's project; labels: at most 32, keys and values of at most 63 characters (RFC 1035)",
            tether: "the job id is the request id (at most 40 characters); a spec's job may not set reference.jobId",
            source: "google/cloud/dataproc/v1/jobs.proto JobReference, Job.labels",
        },
        Edge {
            topic: Topic::Filters,
            says: "jobs.list filter: \"status.state = ACTIVE|NON_ACTIVE\", labels.KEY = value and (newer) insertTime, joined by AND only, case sensitive; a filter makes the service ignore jobStateMatcher; no order is documented",
            tether: "a sweep lists each region's ACTIVE jobs (pageSize 100) and matches them by job id; a job not listed is read with jobs.get, which confirms every end",
            source: "google/cloud/dataproc/v1/jobs.proto ListJobsRequest.filter",
        },
        Edge {
            topic: Topic::Other,
            says: "states: PENDING, SETUP_DONE, RUNNING; CANCEL_PENDING and CANCEL_STARTED after a cancel; ATTEMPT_FAILURE when an attempt of a restartable job failed (it is restarted); CANCELLED, DONE and ERROR end it (gcloud's terminal set); jobs.cancel answers the job, then cancels it",
            tether: "CANCELLED cancelled, DONE succeeded, ERROR failed; ATTEMPT_FAILURE and the cancel states are not ends; status.details is the message",
            source: "google/cloud/dataproc/v1/jobs.proto JobStatus.State; google-cloud-sdk api_lib/dataproc/dataproc.py terminal_job_states",
        },
        DATAPROC_MAY_HAVE_RUN,
        DATAPROC_THROTTLING,
        Edge {
            topic: Topic::Other,
            says: "Dataproc documents no job or batch state-change log entry; its entries (audit, driver output) name the job or batch in the resource labels of cloud_dataproc_job or cloud_dataproc_batch",
            tether: "any such entry wakes its job up without a state: it is polled at once, and the poll decides",
            source: "Cloud Logging monitored resource list (cloud_dataproc_job, cloud_dataproc_batch; https://cloud.google.com/logging/docs/api/v2/resource-list)",
        },
        EVENT_DELIVERY,
    ],
};

/// Dataproc Serverless batches.
pub static DATAPROC_BATCH: Edges = Edges {
    kind: "dataproc-batch",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        DATAPROC_CONSISTENCY,
        Edge {
            topic: Topic::Retention,
            says: "not documented: a batch is kept until it is deleted (batches.delete of a batch not ended fails FAILED_PRECONDITION)",
            tether: "forgotten_after has no bound by default; a batch seen and then gone is outcome_unknown",
            source: "google/cloud/dataproc/v1/batches.proto DeleteBatch",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "requestId (at most 40 letters, digits, _ and -): \"If the service receives two CreateBatchRequests with the same request_id, the second request is ignored and the Operation that corresponds to the first Batch created and stored in the backend is returned\"; the same batchId with another request id answers 409 ALREADY_EXISTS",
            tether: "the request id and the batch id are both the key (or t and 39 hex digits of its SHA-256 where the key does not fit): a lost answer is sent again with them, and 409 for the id is the batch made before",
            source: "google/cloud/dataproc/v1/batches.proto CreateBatchRequest; apache/airflow #29109, #69855",
        },
        Edge {
            topic: Topic::Names,
            says: "batchId: 4 to 63 characters of /[a-z][0-9]-/ (gcloud: a letter or digit first and last); a batch is named projects/P/locations/L/batches/ID, its operation projects/P/regions/L/operations/UUID",
            tether: "an engine key (tether- and 32 lowercase hex digits) is the batch id as it is; another key is hashed to t and 39 hex digits",
            source: "google/cloud/dataproc/v1/batches.proto CreateBatchRequest.batch_id; google-cloud-sdk command_lib/dataproc/batches/batches_create_request_factory.py",
        },
        Edge {
            topic: Topic::Filters,
            says: "batches.list filter: batch_id, batch_uuid, state, create_time and labels, with AND and OR (AIP-160), case sensitive; orderBy only create_time desc; pageSize at most 1,000 (default 20)",
            tether: "a sweep lists each region's PENDING, RUNNING and CANCELLING batches created since its oldest tracked one less 5 minutes of clock skew (pageSize 100); a batch not listed is read with batches.get",
            source: "google/cloud/dataproc/v1/batches.proto ListBatchesRequest",
        },
        Edge {
            topic: Topic::Other,
            says: "a batch is cancelled through its long-running operation (operations.cancel of Batch.operation, \"best effort\", answering an empty message); it then goes CANCELLING and CANCELLED; states PENDING, RUNNING, CANCELLING; SUCCEEDED, FAILED and CANCELLED end it",
            tether: "a cancel reads the batch's operation and cancels it; SUCCEEDED succeeded, FAILED failed, CANCELLED cancelled; stateMessage is the message",
            source: "google/cloud/dataproc/v1/batches.proto Batch.State, Batch.operation; google/longrunning/operations.proto CancelOperation",
        },
        DATAPROC_MAY_HAVE_RUN,
        DATAPROC_THROTTLING,
        Edge {
            topic: Topic::Other,
            says: "Dataproc documents no job or batch state-change log entry; its entries (audit, driver output) name the job or batch in the resource labels of cloud_dataproc_job or cloud_dataproc_batch",
            tether: "any such entry wakes its job up without a state: it is polled at once, and the poll decides",
            source: "Cloud Logging monitored resource list (cloud_dataproc_job, cloud_dataproc_batch; https://cloud.google.com/logging/docs/api/v2/resource-list)",
        },
        EVENT_DELIVERY,
    ],
};
