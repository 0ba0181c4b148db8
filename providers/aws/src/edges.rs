//! The edge catalog of each AWS kind (see [`tether_provider::edges`]), from the services' own
//! API models (botocore's `service-2.json`, the same text as the API reference pages) and
//! developer guides. "Not documented" entries say what tether assumes instead.

use std::time::Duration;

use tether_provider::edges::{Edge, Edges, Topic, HOUR, UNDOCUMENTED_GRACE};

use crate::config::Service;

/// The catalog of `service`'s kind.
pub fn of(service: Service) -> &'static Edges {
    match service {
        Service::Emr => &EMR,
        Service::EmrServerless => &EMR_SERVERLESS,
        Service::Glue => &GLUE,
        Service::Batch => &BATCH,
        Service::Ecs => &ECS,
        Service::StepFunctions => &STEP_FUNCTIONS,
        Service::SageMakerTraining => &SAGEMAKER_TRAINING,
        Service::SageMakerProcessing => &SAGEMAKER_PROCESSING,
        Service::EmrContainers => &EMR_CONTAINERS,
        Service::RedshiftData => &REDSHIFT_DATA,
        Service::Athena => &ATHENA,
    }
}

const THROTTLING: Edge = Edge {
    topic: Topic::Throttling,
    says: "ThrottlingException (400) \"The request was denied due to request throttling\"; the SDKs also treat TooManyRequestsException, RequestLimitExceeded, LimitExceededException and HTTP 429 as throttling",
    tether: "not processed: waits (Retry-After, else backoff) and sends again; slows the account's rate limiter",
    source: "AWS Common Errors page; botocore/retries/standard.py (_THROTTLED_ERROR_CODES)",
};

const SERVER_ERRORS: Edge = Edge {
    topic: Topic::MayHaveRun,
    says: "5xx (InternalFailure, ServiceUnavailable) and timeouts: \"you might see an exception because of timeouts or server issues occurring after the resources are mutated\"",
    tether: "the create's outcome is unknown: tether finds the job (by its key) before anything is sent again",
    source: "ECS API reference, Ensuring idempotency (the general AWS rule); AWS Common Errors page",
};

/// What every kind's events share: EventBridge's delivery and the queue's.
const EVENT_DELIVERY: Edge = Edge {
    topic: Topic::Other,
    says: "the services' state-change events reach EventBridge \"best effort\" (rarely, one is not delivered); an SQS standard queue delivers each message at least once, in no guaranteed order",
    tether: "an event is a hint: the job it names is polled at once and only the poll is recorded; a lost event leaves the job to its poll cadence, a repeated or late one costs one poll",
    source: "Amazon EventBridge event reference, event-delivery-level (Best effort; https://docs.aws.amazon.com/eventbridge/latest/ref/event-delivery-level.html); Amazon SQS Developer Guide, standard queues (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html)",
};

/// A kind's state-change event: what it says, what tether does, where it is documented.
const fn event(says: &'static str, tether: &'static str, source: &'static str) -> Edge {
    Edge {
        topic: Topic::Other,
        says,
        tether,
        source,
    }
}

/// EMR steps.
pub static EMR: Edges = Edges {
    kind: "emr",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether DescribeStep answers at once for a step AddJobFlowSteps just returned",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore emr/2009-03-31 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"After 1,000 steps have been added to a cluster, the submission of additional steps causes the removal of older, user-submitted step records\"; terminated clusters' metadata is kept two months",
            tether: "a step seen once and then gone is forgotten: outcome_unknown, never resubmitted silently",
            source: "Amazon EMR Management Guide, emr-view-steps.md, emr-manage-view-clusters.md",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "AddJobFlowSteps has no idempotency token: a repeated call adds another step",
            tether: "the step name carries the key (`<name> [<key>]`); a lost answer is reconciled by ListSteps before any resend",
            source: "botocore emr AddJobFlowStepsInput",
        },
        Edge {
            topic: Topic::Limits,
            says: "ListSteps returns at most 50 steps a call, newest first; at most 256 steps PENDING or RUNNING per cluster; names up to 256 characters",
            tether: "find pages ListSteps up to find_max_pages",
            source: "botocore emr ListStepsInput.Marker, StepConfig.Name; EMR Management Guide AddingStepstoaJobFlow.md",
        },
        event(
            "\"EMR Step Status Change\" (aws.emr, detail.stepId) is documented for PENDING, CANCEL_PENDING, RUNNING, COMPLETED, CANCELLED and FAILED; none for INTERRUPTED",
            "the step id is the job's reference; an INTERRUPTED step is seen at its next poll",
            "Amazon EMR Management Guide, https://docs.aws.amazon.com/emr/latest/ManagementGuide/emr-manage-cloudwatch-events.html (Step events) and emr-service-limits-cloudwatch-events.html (example)",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// EMR Serverless job runs.
pub static EMR_SERVERLESS: Edges = Edges {
    kind: "emr-serverless",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether GetJobRun answers at once for a new run",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore emr-serverless/2021-07-13 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "not documented; runs go with their application",
            tether: "a run seen once and then gone is forgotten: outcome_unknown",
            source: "botocore emr-serverless (no retention statement)",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "clientToken (1-64 of [A-Za-z0-9._-]) \"must be unique for each request\"; its scope and lifetime are not documented",
            tether: "the key is the clientToken: a lost answer is repeated with the same token",
            source: "botocore emr-serverless StartJobRunRequest.clientToken",
        },
        Edge {
            topic: Topic::Limits,
            says: "ListJobRuns takes maxResults 1-50, no name filter; createdAtAfter bounds it by time",
            tether: "find pages the application's runs up to find_max_pages and compares names",
            source: "botocore emr-serverless ListJobRunsRequest",
        },
        event(
            "\"EMR Serverless Job Run State Change\" (aws.emr-serverless, detail.jobRunId) at every state change of a job run; a retried attempt (releases 7.1.0 and later) sends \"EMR Serverless Job Run Retry\"",
            "the run id is the job's reference; retry and resource-utilization events are foreign (the run's state events follow)",
            "EMR Serverless User Guide, https://docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-eventbridge.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// Glue job runs.
pub static GLUE: Edges = Edges {
    kind: "glue",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(90 * 86_400)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether GetJobRun answers at once for a new run",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore glue/2017-03-31 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"Job run history is accessible for 90 days\" (the developer guide; the API reference says 365 days)",
            tether: "forgotten_after defaults to the shorter, 90 days",
            source: "AWS Glue Developer Guide, aws-glue-api-jobs-runs; botocore glue GetJobRun",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "StartJobRun has no idempotency token: a repeated call starts another run",
            tether: "the run carries the key as the argument --tether-key; a lost answer is reconciled by GetJobRuns before any resend",
            source: "botocore glue StartJobRunRequest",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "StartJobRun may answer OperationTimeoutException (\"The operation timed out.\", a client error in the model) or InternalServiceException; whether the run was started is not documented",
            tether: "both are outcomes unknown: reconciled by find, never recorded as a refusal",
            source: "botocore glue StartJobRun errors",
        },
        Edge {
            topic: Topic::Limits,
            says: "GetJobRuns returns runs newest first, MaxResults 1-200, no state or time filter",
            tether: "find pages GetJobRuns up to find_max_pages",
            source: "botocore glue GetJobRuns",
        },
        event(
            "\"Glue Job State Change\" (aws.glue, detail.jobRunId, detail.state) reports a run's end (SUCCEEDED, FAILED, TIMEOUT, STOPPED); a run's start sends none",
            "the run id is the job's reference; RUNNING is seen by polling",
            "AWS Glue Developer Guide, https://docs.aws.amazon.com/glue/latest/dg/automating-awsglue-with-cloudwatch-events.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// AWS Batch jobs.
pub static BATCH: Edges = Edges {
    kind: "batch",
    visible_after_create: Duration::from_secs(5 * 60),
    forgotten_after: Some(Duration::from_secs(7 * 86_400)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented by AWS; DescribeJobs is reported to answer an empty list for a job just submitted",
            tether: "a job missing from DescribeJobs within not_found_grace (5 minutes) of the handle is not an end",
            source: "Netflix/metaflow#543, apache/airflow#37552 (field reports)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"The job state for SUCCEEDED jobs is persisted in AWS Batch for at least 7 days\" (FAILED likewise)",
            tether: "forgotten_after defaults to 7 days; a job seen and then gone is outcome_unknown",
            source: "AWS Batch User Guide, job_states.md",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "SubmitJob has no idempotency token; job names need not be unique",
            tether: "the job name carries the key (`<jobName>-<key>`); a lost answer is reconciled by ListJobs with the JOB_NAME filter",
            source: "botocore batch SubmitJobRequest",
        },
        Edge {
            topic: Topic::Names,
            says: "jobName: up to 128 letters, digits, hyphens and underscores, starting alphanumeric",
            tether: "validate_spec refuses a name that cannot carry the key within 128",
            source: "botocore batch SubmitJobRequest.jobName",
        },
        Edge {
            topic: Topic::Filters,
            says: "\"Only one filter can be used at a time\"; with a filter jobStatus is ignored; JOB_NAME is a case-insensitive match",
            tether: "find sends the JOB_NAME filter alone",
            source: "botocore batch ListJobsRequest.filters",
        },
        Edge {
            topic: Topic::Limits,
            says: "DescribeJobs takes up to 100 job ids; ListJobs with filters returns up to 100 a page",
            tether: "sweeps describe 100 jobs a call; single status reads within status_gather (1s) go out as one DescribeJobs",
            source: "botocore batch DescribeJobsRequest.jobs, ListJobsRequest.maxResults",
        },
        event(
            "\"Batch Job State Change\" (aws.batch, detail.jobId, detail.status) whenever a submitted job's status changes: \"Events aren't created for the initial job submission\"",
            "the job id is the job's reference; SUBMITTED is never an event",
            "AWS Batch User Guide, https://docs.aws.amazon.com/batch/latest/userguide/batch_job_events.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// Amazon ECS tasks.
pub static ECS: Edges = Edges {
    kind: "ecs",
    visible_after_create: Duration::from_secs(5 * 60),
    forgotten_after: Some(HOUR),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "\"The Amazon ECS API follows an eventual consistency model\": run DescribeTasks with backoff \"increasing gradually up to five minutes of wait time\"; a task not yet visible is a MISSING failure",
            tether: "MISSING within not_found_grace (5 minutes) of the handle is not an end",
            source: "botocore ecs RunTask; ECS API failure reasons (MISSING)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"stopped tasks appear in the returned results for at least one hour\"; ListTasks: \"Recently stopped tasks might appear\"",
            tether: "forgotten_after defaults to 1 hour; a task seen and then MISSING is outcome_unknown",
            source: "botocore ecs DescribeTasks, ListTasks",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "clientToken (up to 64 characters) is scoped to the cluster and lives 24 hours; a retry with the same token and parameters returns the original result; with other parameters, ConflictException",
            tether: "the token is derived from the key and the attempt: a RunTask that placed no task (failures[]) is refused for that attempt, and the next try sends a new token",
            source: "ECS API reference, Ensuring idempotency (RunTask); botocore ecs RunTaskRequest.clientToken",
        },
        Edge {
            topic: Topic::Filters,
            says: "\"When you specify startedBy as the filter, it must be the only filter that you use\"",
            tether: "find lists by startedBy alone (running and recently stopped tasks)",
            source: "botocore ecs ListTasksRequest.startedBy",
        },
        Edge {
            topic: Topic::Limits,
            says: "DescribeTasks takes up to 100 tasks; ListTasks pages up to 100",
            tether: "sweeps describe 100 tasks per cluster a call; single status reads within status_gather (1s) go out as one DescribeTasks per cluster",
            source: "botocore ecs DescribeTasksRequest.tasks, ListTasksRequest.maxResults",
        },
        Edge {
            topic: Topic::Other,
            says: "RunTask answers 200 with failures[] (RESOURCE:*, AGENT, capacity) when it placed no task",
            tether: "a refusal for that attempt (nothing runs): the next try submits with a new token",
            source: "botocore ecs RunTaskResponse.failures",
        },
        event(
            "\"ECS Task State Change\" (aws.ecs, detail.taskArn, detail.lastStatus) on task and container changes; detail.version grows with each change of the task, by which events that arrive out of order are told apart",
            "the task ARN is the job's reference; order is left to the poll, which reads the state again",
            "Amazon ECS Developer Guide, https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// Step Functions executions.
pub static STEP_FUNCTIONS: Edges = Edges {
    kind: "stepfunctions",
    visible_after_create: Duration::from_secs(5 * 60),
    forgotten_after: Some(Duration::from_secs(90 * 86_400)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "DescribeExecution \"is eventually consistent. The results are best effort and may not reflect very recent updates and changes\" (ListExecutions likewise)",
            tether: "ExecutionDoesNotExist within not_found_grace (5 minutes) of the handle is not an end",
            source: "botocore stepfunctions/2016-11-23 DescribeExecution",
        },
        Edge {
            topic: Topic::Retention,
            says: "closed executions of STANDARD machines can be read for 90 days",
            tether: "forgotten_after defaults to 90 days",
            source: "Step Functions Developer Guide, limits-overview.md",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "\"StartExecution is idempotent for STANDARD workflows\" while the execution runs with the same name and input; once closed or with other input, ExecutionAlreadyExists; names unique per account, Region and state machine for 90 days",
            tether: "the execution name carries the key; ExecutionAlreadyExists is read as made by the key",
            source: "botocore stepfunctions StartExecution, StartExecutionInput.name",
        },
        Edge {
            topic: Topic::Other,
            says: "\"StartExecution isn't idempotent for EXPRESS workflows\"; DescribeExecution, ListExecutions and StopExecution do not support EXPRESS executions",
            tether: "EXPRESS state machines are refused (DescribeStateMachine's type, read once per machine) before anything is submitted",
            source: "botocore stepfunctions StartExecution, DescribeExecution, StopExecution",
        },
        Edge {
            topic: Topic::Names,
            says: "name: 1-80 characters, no white space, brackets, wildcards or special characters",
            tether: "the keyed name is cut to 80",
            source: "botocore stepfunctions StartExecutionInput.name",
        },
        Edge {
            topic: Topic::Limits,
            says: "ListExecutions pages up to 1000, newest first; page tokens expire after 24 hours",
            tether: "sweeps list RUNNING executions",
            source: "botocore stepfunctions ListExecutions",
        },
        event(
            "\"Step Functions Execution Status Change\" (aws.states, detail.executionArn, detail.status) for STANDARD executions: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; an input or output too large is left out (inputDetails.included false)",
            "the execution ARN is the job's reference; tether reads no payload from an event",
            "AWS Step Functions Developer Guide, https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

const SAGEMAKER_ENTRIES: &[Edge] = &[
    Edge {
        topic: Topic::Consistency,
        says: "not documented whether Describe*Job answers at once for a new job; an unknown job is answered ValidationException \"Requested resource not found\"",
        tether: "a \"not found\" within not_found_grace of the handle is not an end",
        source: "botocore sagemaker/2017-07-24; aws/aws-sdk#165 (field report)",
    },
    Edge {
        topic: Topic::Retention,
        says: "jobs stay until deleted (DeleteTrainingJob; after it the name can be reused)",
        tether: "a job seen and then gone is outcome_unknown",
        source: "botocore sagemaker DeleteTrainingJob",
    },
    Edge {
        topic: Topic::Idempotency,
        says: "no token: \"The name must be unique within an Amazon Web Services Region in an Amazon Web Services account\"; a second create answers ResourceInUse",
        tether: "the job name carries the key; ResourceInUse is read as made by the key",
        source: "botocore sagemaker CreateTrainingJobRequest.TrainingJobName, CreateProcessingJobRequest.ProcessingJobName",
    },
    Edge {
        topic: Topic::Names,
        says: "1-63 characters of `[a-zA-Z0-9](-*[a-zA-Z0-9])`",
        tether: "the keyed name is cut to 63",
        source: "botocore sagemaker TrainingJobName, ProcessingJobName",
    },
    Edge {
        topic: Topic::Filters,
        says: "with StatusEquals and MaxResults, MaxResults jobs are read first and then filtered: pages may be short or empty while NextToken goes on",
        tether: "sweeps follow NextToken rather than stopping at a short page",
        source: "botocore sagemaker ListTrainingJobs",
    },
    event(
        "\"SageMaker Training Job State Change\" and \"SageMaker Processing Job State Change\" (aws.sagemaker, detail.TrainingJobName / ProcessingJobName and their status) at status changes",
        "the job name, unique in the account and region, is the job's reference",
        "Amazon SageMaker Developer Guide, https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html",
    ),
    EVENT_DELIVERY,
    SERVER_ERRORS,
    THROTTLING,
];

/// SageMaker training jobs.
pub static SAGEMAKER_TRAINING: Edges = Edges {
    kind: "sagemaker-training",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: SAGEMAKER_ENTRIES,
};

/// SageMaker processing jobs.
pub static SAGEMAKER_PROCESSING: Edges = Edges {
    kind: "sagemaker-processing",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: SAGEMAKER_ENTRIES,
};

/// EMR on EKS job runs.
pub static EMR_CONTAINERS: Edges = Edges {
    kind: "emr-containers",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: None,
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether DescribeJobRun answers at once for a new run",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore emr-containers/2020-10-01 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "not documented",
            tether: "a run seen and then gone is outcome_unknown",
            source: "botocore emr-containers (no retention statement)",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "clientToken (1-64) \"The client idempotency token of the job run request\", echoed on the run; scope and lifetime not documented",
            tether: "the key is the clientToken: a lost answer is repeated with the same token",
            source: "botocore emr-containers StartJobRunRequest.clientToken",
        },
        Edge {
            topic: Topic::Filters,
            says: "ListJobRuns filters by name, states (up to 10) and createdAfter; maxResults has no documented maximum",
            tether: "find lists by name",
            source: "botocore emr-containers ListJobRunsRequest",
        },
        event(
            "the EventBridge reference lists \"EMR Job Run State Change\" and \"EmrContainers Job Run State Change\" (aws.emr-containers); no example event is documented",
            "both are read, detail.id (DescribeJobRun's field) as the run id: not checked against a real event",
            "Amazon EventBridge event reference, https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-emr-containers.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// Redshift Data API statements.
pub static REDSHIFT_DATA: Edges = Edges {
    kind: "redshift-data",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(24 * 60 * 60)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether DescribeStatement answers at once for a statement ExecuteStatement just returned",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore redshift-data/2019-12-20 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"The maximum retention time for query results is 24 hours\" and \"The maximum duration of a query is 24 hours\"; no retention of the statement's metadata is documented (DescribeStatement of an expired statement is reported to answer ValidationException \"... as it has expired\")",
            tether: "a statement gone (ResourceNotFoundException, or that ValidationException) after it was seen is outcome_unknown, never resubmitted silently",
            source: "Amazon Redshift Management Guide, data-api.md (Considerations when calling the Data API)",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "ClientToken (1-64) \"A unique, case-sensitive identifier that you provide to ensure the idempotency of the request\"; \"The maximum retention time for a client token ... is 8 hours\"; its scope, and a reuse with other SQL, not documented",
            tether: "the key is the ClientToken, and the start counts as not idempotent (a supervisor away for over 8 hours would otherwise send a second statement): after a lost answer find runs before anything is sent again",
            source: "botocore redshift-data ExecuteStatementInput.ClientToken",
        },
        Edge {
            topic: Topic::Filters,
            says: "ListStatements takes one Status (ALL for every status; by default only finished statements are listed); StatementName is a case-sensitive prefix match; RoleLevel (default true) lists the statements of the caller's IAM role",
            tether: "find lists by the key's statement name with Status ALL and compares names exactly; a sweep lists STARTED statements; supervisors sharing an account use one IAM role",
            source: "botocore redshift-data ListStatementsRequest",
        },
        Edge {
            topic: Topic::Limits,
            says: "ListStatements MaxResults 0-100; StatementName up to 500 characters",
            tether: "pages of 100; the key ends the name, the spec's name cut to fit",
            source: "botocore redshift-data ListStatementsRequest.MaxResults, StatementNameString",
        },
        Edge {
            topic: Topic::Other,
            says: "CancelStatement of a statement that is not running: the answer is not documented (moto answers ValidationException \"Could not cancel a query that is already in <state> state\")",
            tether: "a refused cancel is reported, never retried as if transient; the statement's own state says how it ended",
            source: "botocore redshift-data CancelStatement; moto redshiftdata",
        },
        Edge {
            topic: Topic::MayHaveRun,
            says: "ExecuteStatementException \"encountered an environmental error while running\", with the StatementId",
            tether: "like a 5xx: the submit's outcome is unknown, and find looks for the statement before anything is sent again",
            source: "botocore redshift-data ExecuteStatementException",
        },
        event(
            "\"Redshift Data Statement Status Change\" (aws.redshift-data, detail.statementId, detail.state) is sent only for a statement started with WithEvent true",
            "ExecuteStatement is sent with WithEvent true unless the spec sets it",
            "Amazon Redshift Management Guide, https://docs.aws.amazon.com/redshift/latest/mgmt/data-api-monitoring-events.html; botocore redshift-data ExecuteStatementInput.WithEvent",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};

/// Athena queries.
pub static ATHENA: Edges = Edges {
    kind: "athena",
    visible_after_create: UNDOCUMENTED_GRACE,
    forgotten_after: Some(Duration::from_secs(45 * 24 * 60 * 60)),
    entries: &[
        Edge {
            topic: Topic::Consistency,
            says: "not documented whether GetQueryExecution answers at once for a query StartQueryExecution just returned",
            tether: "a \"not found\" within not_found_grace of the handle is not an end",
            source: "botocore athena/2017-05-18 (no consistency statement)",
        },
        Edge {
            topic: Topic::Retention,
            says: "\"Athena keeps a query history for 45 days\"",
            tether: "a query gone after it was seen is outcome_unknown; an unknown query can only be InvalidRequestException (the operations' only client error), reported as \"QueryExecution ... was not found\" with AthenaErrorCode QUERY_EXECUTION_NOT_FOUND by third-party recordings against Athena (not documented; moto answers 500)",
            source: "botocore athena ListQueryExecutions, GetQueryExecution errors; Athena User Guide, Viewing query history; athena-local's recorded tests",
        },
        Edge {
            topic: Topic::Idempotency,
            says: "ClientRequestToken (32-128) \"If another StartQueryExecution request is received, the same response is returned and another query is not created. An error is returned if a parameter, such as QueryString, has changed\"; its lifetime is not documented",
            tether: "the key is the token: a lost answer is repeated with the same token and spec (a changed spec is a new generation, with a new key)",
            source: "botocore athena StartQueryExecutionInput.ClientRequestToken",
        },
        Edge {
            topic: Topic::Filters,
            says: "ListQueryExecutions names a workgroup's query ids only: no state, time, name or token filter",
            tether: "find has nothing to list: the token is the deduplication; a sweep reads the queries by id",
            source: "botocore athena ListQueryExecutionsInput",
        },
        Edge {
            topic: Topic::Limits,
            says: "BatchGetQueryExecution takes 1 to 50 ids and reports the ones it could not read in UnprocessedQueryExecutionIds",
            tether: "sweeps read 50 queries a call; an unprocessed one is read singly",
            source: "botocore athena BatchGetQueryExecutionInput, UnprocessedQueryExecutionId",
        },
        Edge {
            topic: Topic::Other,
            says: "not documented: the order of ListQueryExecutions (third parties report newest first), and StopQueryExecution of an ended query (reported to succeed and change nothing)",
            tether: "find reads every page up to find_max_pages whatever the order and orders what it finds by submission time; a cancel of an ended query is not an error",
            source: "botocore athena (no order or stop statement); athena-local's recorded tests",
        },
        Edge {
            topic: Topic::Throttling,
            says: "TooManyRequestsException (Reason CONCURRENT_QUERY_LIMIT_EXCEEDED) when running and queued queries exceed the account's quota: the query was not started",
            tether: "throttling: waits and sends the start again with the same token",
            source: "botocore athena TooManyRequestsException; Athena User Guide, Service quotas",
        },
        event(
            "\"Athena Query State Change\" (aws.athena, detail.queryExecutionId, detail.currentState) at each state change; detail.sequenceNumber orders them",
            "the query execution id is the job's reference; order is left to the poll",
            "Amazon Athena User Guide, https://docs.aws.amazon.com/athena/latest/ug/athena-events.html",
        ),
        EVENT_DELIVERY,
        SERVER_ERRORS,
        THROTTLING,
    ],
};
