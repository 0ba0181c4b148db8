//! The edge catalog of each Google kind (see [`tether_provider::edges`]), from Google's own
//! models and documentation: googleapis' protos (`google/cloud/bigquery/v2`), BigQuery's
//! discovery document (as the Google Cloud CLI carries it, `platform/bq/discovery_next`), the
//! REST reference, and what Google's own clients (`google-cloud-bigquery`, `bq`) do.

use std::time::Duration;

use tether_provider::edges::{Edge, Edges, Topic, UNDOCUMENTED_GRACE};

/// The catalog of `kind` (one of [`crate::factory::KINDS`]).
pub fn of(_kind: &str) -> &'static Edges {
    &BIGQUERY
}

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
    ],
};
