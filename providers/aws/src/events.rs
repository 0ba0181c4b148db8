//! The EventBridge events of the AWS kinds, as tether reads them: which `source` and
//! `detail-type` each service sends when one of its jobs changes state, and where the
//! `detail` names the job ([`EventShape`], one row a kind, [`SHAPES`]); [`read`] turns one
//! event (as SQS delivers it, directly or through an SNS topic) into a
//! [`Reading`].
//!
//! The shapes are the services' own documented examples (the fixtures in
//! `tests/events/`): AWS Batch User Guide "Job state change events"; Amazon ECS Developer Guide
//! "Amazon ECS task state change events"; Amazon EMR Management Guide "When to set up EMR
//! events in CloudWatch" (EMR Step Status Change); AWS Glue Developer Guide "Automating AWS
//! Glue with EventBridge"; Amazon SageMaker Developer Guide "Events that SageMaker sends to
//! EventBridge"; AWS Step Functions Developer Guide "Automating Step Functions event delivery
//! with EventBridge"; EMR Serverless User Guide "Automating EMR Serverless with Amazon
//! EventBridge"; Amazon Athena User Guide "Monitoring Athena queries with EventBridge";
//! Amazon Redshift Management Guide "Monitoring events for the Amazon Redshift Data API in
//! Amazon EventBridge". EMR on EKS: the EventBridge event reference lists "EMR Job Run State
//! Change" and "EmrContainers Job Run State Change" for `aws.emr-containers`; no example
//! event is published, so its fields (`id`, `state`) are those of `DescribeJobRun`'s
//! `jobRun`, which is what every emulator of it sends.

use serde_json::Value;
use tether_provider::events::{Hint, Reading};

use crate::config::Service;

/// How one kind's state-change events look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventShape {
    /// The kind whose jobs they name.
    pub service: Service,
    /// The envelope's `source` (`aws.batch`).
    pub source: &'static str,
    /// The envelope's `detail-type` (`Batch Job State Change`); the first is what the
    /// service sends (and the simulator sends), any other one an alias it also sends.
    pub detail_types: &'static [&'static str],
    /// The `detail` field holding the job's own id: what the adapter's `handle_ref` is.
    pub id: &'static str,
    /// The `detail` field holding the state.
    pub state: &'static str,
    /// The states the service documents as not an end (the adapter's state mapping reads
    /// them as pending or running): an event reporting one is progress, not worth a call at
    /// once ([`Hint::progress`]). Any other state, an unknown one too, may be an end.
    pub progress: &'static [&'static str],
}

impl EventShape {
    /// The `detail-type` the service sends.
    pub fn detail_type(&self) -> &'static str {
        self.detail_types[0]
    }
}

const fn shape(
    service: Service,
    source: &'static str,
    detail_types: &'static [&'static str],
    (id, state): (&'static str, &'static str),
    progress: &'static [&'static str],
) -> EventShape {
    EventShape {
        service,
        source,
        detail_types,
        id,
        state,
        progress,
    }
}

/// Every AWS kind's event, in [`Service::ALL`]'s order.
pub const SHAPES: [EventShape; Service::ALL.len()] = [
    shape(
        Service::Emr,
        "aws.emr",
        &["EMR Step Status Change"],
        ("stepId", "state"),
        &["PENDING", "RUNNING", "CANCEL_PENDING"],
    ),
    shape(
        Service::EmrServerless,
        "aws.emr-serverless",
        &["EMR Serverless Job Run State Change"],
        ("jobRunId", "state"),
        &[
            "SUBMITTED",
            "PENDING",
            "SCHEDULED",
            "QUEUED",
            "RUNNING",
            "CANCELLING",
        ],
    ),
    shape(
        Service::Glue,
        "aws.glue",
        &["Glue Job State Change"],
        ("jobRunId", "state"),
        &["STARTING", "WAITING", "RUNNING", "STOPPING"],
    ),
    shape(
        Service::Batch,
        "aws.batch",
        &["Batch Job State Change"],
        ("jobId", "status"),
        &["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"],
    ),
    shape(
        Service::Ecs,
        "aws.ecs",
        &["ECS Task State Change"],
        ("taskArn", "lastStatus"),
        &[
            "PROVISIONING",
            "PENDING",
            "ACTIVATING",
            "RUNNING",
            "DEACTIVATING",
            "STOPPING",
            "DEPROVISIONING",
        ],
    ),
    shape(
        Service::StepFunctions,
        "aws.states",
        &["Step Functions Execution Status Change"],
        ("executionArn", "status"),
        &["PENDING_REDRIVE", "RUNNING"],
    ),
    shape(
        Service::SageMakerTraining,
        "aws.sagemaker",
        &["SageMaker Training Job State Change"],
        ("TrainingJobName", "TrainingJobStatus"),
        &["InProgress", "Stopping"],
    ),
    shape(
        Service::SageMakerProcessing,
        "aws.sagemaker",
        &["SageMaker Processing Job State Change"],
        ("ProcessingJobName", "ProcessingJobStatus"),
        &["InProgress", "Stopping"],
    ),
    shape(
        Service::EmrContainers,
        "aws.emr-containers",
        &[
            "EMR Job Run State Change",
            "EmrContainers Job Run State Change",
        ],
        ("id", "state"),
        &["PENDING", "SUBMITTED", "RUNNING", "CANCEL_PENDING"],
    ),
    shape(
        Service::RedshiftData,
        "aws.redshift-data",
        &["Redshift Data Statement Status Change"],
        ("statementId", "state"),
        &["SUBMITTED", "PICKED", "STARTED"],
    ),
    shape(
        Service::Athena,
        "aws.athena",
        &["Athena Query State Change"],
        ("queryExecutionId", "currentState"),
        &["QUEUED", "RUNNING"],
    ),
];

/// The event shape of `service`'s jobs.
pub fn shape_of(service: Service) -> &'static EventShape {
    SHAPES
        .iter()
        .find(|s| s.service == service)
        .expect("a shape for every service")
}

/// What one message of an events queue says: an EventBridge event (as EventBridge delivers
/// it to SQS, or wrapped in an SNS notification when a topic sits between) naming a job of
/// an AWS kind is a [`Hint`] (its kind, the job's id, the envelope's `region`, `time` and the
/// detail's state); a well-formed event of another source or detail type is
/// [`Reading::Foreign`]; a body that is not an event, or an event of a kind tether reads that
/// lacks the job's id, is an error naming what is missing.
pub fn read(body: &str) -> Result<Reading, String> {
    let mut event: Value =
        serde_json::from_str(body).map_err(|e| format!("the message is not JSON: {e}"))?;
    // SNS to SQS without raw message delivery: the event is the notification's `Message`.
    if event["Type"] == "Notification" && event["Message"].is_string() && event["source"].is_null()
    {
        let message = event["Message"].as_str().unwrap_or_default();
        event = serde_json::from_str(message)
            .map_err(|e| format!("the SNS notification's Message is not JSON: {e}"))?;
    }
    if !event.is_object() {
        return Err("the message is not a JSON object".into());
    }
    let text = |field: &str| event[field].as_str().filter(|t| !t.is_empty());
    let (Some(source), Some(detail_type)) = (text("source"), text("detail-type")) else {
        return Err("not an EventBridge event: it has no source or no detail-type".into());
    };
    let Some(shape) = SHAPES
        .iter()
        .find(|s| s.source == source && s.detail_types.contains(&detail_type))
    else {
        return Ok(Reading::Foreign(format!("{source}: {detail_type}")));
    };
    let detail = &event["detail"];
    if !detail.is_object() {
        return Err(format!("{source} {detail_type:?}: the event has no detail"));
    }
    let Some(reference) = crate::kit::text(&detail[shape.id]) else {
        return Err(format!(
            "{source} {detail_type:?}: detail.{} (the job's id) is missing",
            shape.id
        ));
    };
    let at_ms = text("time")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis());
    let state = crate::kit::text(&detail[shape.state]);
    Ok(Reading::Hint(Hint {
        kind: shape.service.kind(),
        reference: reference.to_string(),
        region: text("region").map(str::to_string),
        at_ms,
        state: state.map(str::to_string),
        progress: state.is_some_and(|s| shape.progress.contains(&s)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A documented example event, from `tests/events/<file>`.
    fn fixture(file: &str) -> String {
        let path = format!("{}/tests/events/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn hint(file: &str) -> Hint {
        match read(&fixture(file)) {
            Ok(Reading::Hint(hint)) => hint,
            other => panic!("{file}: {other:?}"),
        }
    }

    fn ms(time: &str) -> Option<i64> {
        Some(
            chrono::DateTime::parse_from_rfc3339(time)
                .unwrap()
                .timestamp_millis(),
        )
    }

    /// Each kind's documented example reads to the job its adapter's `handle_ref` names, with
    /// the envelope's region and time and the detail's state.
    #[test]
    fn every_documented_example_reads_to_its_hint() {
        let cases = [
            ("batch.json", "batch", "4c7599ae-0a82-49aa-ba5a-4727fcce14a8", "us-east-1", "2022-01-11T23:36:40Z", "RUNNABLE"),
            ("ecs.json", "ecs", "arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad", "us-west-2", "2020-01-23T17:57:58Z", "RUNNING"),
            ("emr.json", "emr", "s-ZYXWVUTSRQPON", "us-east-1", "2016-12-16T20:53:09Z", "FAILED"),
            ("glue.json", "glue", "jr_abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", "us-east-1", "2017-09-07T18:57:21Z", "SUCCEEDED"),
            ("sagemaker-training.json", "sagemaker-training", "89c96cc8-dded-4739-afcc-6f1dc936701d", "us-east-1", "2018-10-06T12:26:13Z", "Completed"),
            ("sagemaker-processing.json", "sagemaker-processing", "integ-test-analytics-algo-54ee3282-5899-4aa3-afc2-7ce1d02", "us-east-1", "2019-05-31T21:49:54Z", "Failed"),
            ("stepfunctions.json", "stepfunctions", "arn:aws:states:us-east-1:012345678912:execution:state-machine-name:execution-name", "us-east-1", "2019-02-26T19:42:21Z", "FAILED"),
            ("emr-serverless.json", "emr-serverless", "00f1cbn5g4bb0c01", "us-east-1", "2022-05-31T21:07:42Z", "RUNNING"),
            ("emr-containers.json", "emr-containers", "000000030i6dnvbucbv", "us-east-1", "2023-03-02T19:42:10Z", "COMPLETED"),
            ("athena.json", "athena", "01234567-0123-0123-0123-012345678901", "us-east-1", "2019-10-06T09:30:10Z", "SUCCEEDED"),
            ("redshift-data.json", "redshift-data", "01bdaca2-8967-4e34-ae3f-41d9728d5644", "us-west-1", "2020-12-22T17:00:00Z", "FINISHED"),
        ];
        assert_eq!(
            cases.len(),
            SHAPES.len(),
            "a documented example for every kind"
        );
        for (file, kind, reference, region, time, state) in cases {
            let want = Hint {
                kind,
                reference: reference.into(),
                region: Some(region.into()),
                at_ms: ms(time),
                state: Some(state.into()),
                progress: ["RUNNABLE", "RUNNING"].contains(&state),
            };
            assert_eq!(hint(file), want, "{file}");
        }
    }

    /// A state an event reports as progress is one the adapter reads as pending or running,
    /// never an end; the ends stay worth a call.
    #[test]
    fn progress_states_are_never_ends() {
        use tether_provider::JobState::{Pending, Running};
        for shape in &SHAPES {
            let mapping: fn(&str) -> tether_provider::JobState = match shape.service {
                Service::Emr => crate::state::emr_step,
                Service::EmrServerless => crate::state::emr_serverless_run,
                Service::Glue => crate::state::glue_run,
                Service::Batch => crate::state::batch_job,
                Service::Ecs => crate::state::ecs_task,
                Service::StepFunctions => crate::state::stepfunctions_execution,
                Service::SageMakerTraining | Service::SageMakerProcessing => {
                    crate::state::sagemaker_job
                }
                Service::EmrContainers => crate::state::emr_containers_run,
                Service::RedshiftData => crate::state::redshift_statement,
                Service::Athena => crate::state::athena_query,
            };
            assert!(!shape.progress.is_empty(), "{:?}", shape.service);
            for state in shape.progress {
                assert!(
                    matches!(mapping(state), Pending | Running),
                    "{:?} {state}",
                    shape.service
                );
            }
        }
        // Ends, and a state tether does not know, are not progress.
        let batch = fixture("batch.json");
        for (state, progress) in [
            ("RUNNABLE", true),
            ("SUCCEEDED", false),
            ("FAILED", false),
            ("QUEUED_TOMORROW", false),
        ] {
            let body = batch.replace("\"RUNNABLE\"", &format!("\"{state}\""));
            let Ok(Reading::Hint(hint)) = read(&body) else {
                panic!("{state}");
            };
            assert_eq!(hint.progress, progress, "{state}");
        }
    }

    #[test]
    fn the_detail_types_emr_on_eks_also_sends_read_alike() {
        let alias = fixture("emr-containers.json").replace(
            "\"EMR Job Run State Change\"",
            "\"EmrContainers Job Run State Change\"",
        );
        assert_eq!(
            read(&alias).unwrap(),
            Reading::Hint(hint("emr-containers.json"))
        );
    }

    /// SNS to SQS without raw message delivery wraps the event in a notification.
    #[test]
    fn an_event_through_an_sns_topic_reads_as_itself() {
        let body = fixture("batch.json");
        let notification = serde_json::json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:tether-events",
            "Message": body,
            "Timestamp": "2022-01-11T23:36:41.000Z",
            "SignatureVersion": "1",
        });
        assert_eq!(
            read(&notification.to_string()).unwrap(),
            Reading::Hint(hint("batch.json"))
        );
    }

    #[test]
    fn another_services_event_is_foreign_and_a_broken_one_an_error() {
        let s3 = serde_json::json!({"version": "0", "id": "1", "source": "aws.s3",
            "detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}});
        assert_eq!(
            read(&s3.to_string()).unwrap(),
            Reading::Foreign("aws.s3: Object Created".into())
        );
        // Another detail type of a source tether reads (a cluster, not a step).
        let cluster =
            fixture("emr.json").replace("EMR Step Status Change", "EMR Cluster State Change");
        assert!(matches!(read(&cluster), Ok(Reading::Foreign(_))));
        let err = read("{not json").unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        let err = read("{\"hello\": 1}").unwrap_err();
        assert!(err.contains("no source"), "{err}");
        let no_id = fixture("batch.json").replace("\"jobId\"", "\"jobIdentifier\"");
        let err = read(&no_id).unwrap_err();
        assert!(err.contains("detail.jobId"), "{err}");
        let bad_sns = serde_json::json!({"Type": "Notification", "Message": "{oops"});
        let err = read(&bad_sns.to_string()).unwrap_err();
        assert!(err.contains("SNS"), "{err}");
    }

    #[test]
    fn a_time_that_is_not_rfc3339_leaves_at_ms_out() {
        let odd = fixture("glue.json").replace("2017-09-07T18:57:21Z", "yesterday");
        let Ok(Reading::Hint(hint)) = read(&odd) else {
            panic!("still a hint")
        };
        assert_eq!(hint.at_ms, None);
    }
}
