"""The DAGs of the real-Airflow scenarios (tests/deployment/test_real_airflow.py)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator
from airflow.sdk import DAG, task

from airflow_provider_tether.operators.job import TetherJobOperator
from airflow_provider_tether.state import TetherCheckpoint, TetherTaskState

SPEC = {
    "run_name": "{{ dag.dag_id }}",
    "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "dbfs:/load.py"}}],
}
START = datetime(2026, 1, 1)
RETRY: dict[str, Any] = {"retries": 1, "retry_delay": timedelta(seconds=1)}

# 1. A worker eviction: the task process is SIGKILLed; Airflow's retry reattaches.
with DAG("evicted", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC, **RETRY)

# 2. Deferrable: the triggerer is SIGKILLed and restarted while the task waits.
with DAG("deferred", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC, deferrable=True, **RETRY)

# 3. A person marks the task failed, while it runs and while it is deferred.
with DAG("marked_failed", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC)

with DAG("marked_failed_deferred", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC, deferrable=True)

# 4. Airflow's own resumable operator, its job id kept in tether by TetherStoreBackend.
with DAG("databricks_resumable", schedule=None, start_date=START, catchup=False):
    DatabricksSubmitRunOperator(task_id="submit", json=SPEC, polling_period_seconds=1, **RETRY)

# 5. An incremental task: a watermark in the task's state across runs.
with DAG("incremental", schedule=None, start_date=START, catchup=False):

    @task
    def load(**context: Any) -> dict[str, int]:
        state = TetherTaskState.from_context(context).across_runs
        since = int(state.get("watermark", default=0))
        until = since + 10
        state.set("watermark", until)
        return {"since": since, "until": until}

    load()

# 6. Clear of a task that succeeded: the next try runs the job again.
with DAG("cleared_done", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC)

# 7. Clear of a running task: the run is cancelled and a new one starts.
with DAG("cleared_running", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC)

# 8. Clear of a deferred task: the old run cancelled and a new one, or the old one carried on.
with DAG("cleared_deferred", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC, deferrable=True)

# 9. SIGTERM of a running task's process (a deploy, an eviction): it leaves at once.
with DAG("sigterm", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks", spec=SPEC, **RETRY)

# 10. The task is SIGKILLed in the middle of a slow submit (12 s, at a second simulator).
with DAG("killed_mid_submit", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks_slow", spec=SPEC, **RETRY)

# 11. 200 deferred tasks (one mapped task) marked failed in one request.
with DAG(
    "bulk_marked_failed", schedule=None, start_date=START, catchup=False, max_active_tasks=200
):
    TetherJobOperator.partial(task_id="job", provider="databricks_long", deferrable=True).expand(
        spec=[{**SPEC, "run_name": f"bulk-{i}"} for i in range(200)]
    )

# 12. Clear of a succeeded DatabricksSubmitRunOperator (Airflow's ResumableJobMixin) on
# TetherStoreBackend: the next try runs the job again.
with DAG("cleared_databricks", schedule=None, start_date=START, catchup=False):
    DatabricksSubmitRunOperator(task_id="submit", json=SPEC, polling_period_seconds=1)

# 13. One DAG, three AWS kinds through tether's simulator: a Batch job (its task SIGKILLed
# mid-run, the retry reattaches), a Step Functions execution and a SageMaker training job.
with DAG("aws_mix", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(
        task_id="batch_job",
        provider="batch",
        spec={
            "jobQueue": "nightly",
            "jobDefinition": "load-orders:3",
            "jobName": "load-orders",
            "containerOverrides": {"command": ["python", "load.py"]},
        },
        **RETRY,
    )
    TetherJobOperator(
        task_id="state_machine",
        provider="stepfunctions",
        spec={
            "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:publish",
            "name": "publish",
            "input": {"day": "2026-12-01"},
        },
        deferrable=True,
    )
    TetherJobOperator(
        task_id="training_job",
        provider="sagemaker",
        spec={
            "TrainingJobName": "churn",
            "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1",
                "TrainingInputMode": "File",
            },
            "OutputDataConfig": {"S3OutputPath": "s3://models/churn"},
            "ResourceConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.xlarge",
                "VolumeSizeInGB": 30,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        },
    )

# 14. Two job APIs tether has no crate for, declared in its config (kind = "http", the
# examples config/livy.toml and config/dbt-cloud.toml): a Livy batch and a dbt Cloud job run.
with DAG("declared_apis", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(
        task_id="livy_batch",
        provider="livy",
        spec={
            "file": "local:/opt/jobs/etl.py",
            "args": ["--run", "{{ run_id }}"],
            "conf": {"spark.executor.memory": "4g"},
        },
        **RETRY,
    )
    TetherJobOperator(
        task_id="dbt_job",
        provider="dbt",
        spec={"job_id": 4242, "steps_override": ["dbt build --select tag:nightly"]},
        deferrable=True,
    )

# 17. A BigQuery job (tether's bigquery kind, on the Google simulator).
with DAG("bigquery_job", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(
        task_id="rollup",
        provider="bigquery",
        spec={
            "configuration": {
                "query": {
                    "query": "SELECT SUM(amount) FROM sales.events WHERE run = '{{ run_id }}'",
                    "useLegacySql": False,
                },
                "labels": {"dag": "bigquery_job"},
            }
        },
        **RETRY,
    )

# 18. A Kubernetes Job, run by the Job controller of tether's API server simulator.
with DAG("kubernetes_job", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(
        task_id="etl",
        provider="k8s",
        spec={
            "manifest": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": "nightly-etl", "labels": {"dag": "kubernetes_job"}},
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "etl",
                                    "image": "registry.example.com/etl:4.2",
                                    "args": ["--run", "{{ run_id }}"],
                                }
                            ],
                        }
                    },
                },
            },
            "namespace": "default",
        },
        **RETRY,
    )

# 15. execution_timeout runs out while the task waits in the worker, and while it is deferred:
# the job is cancelled (the user's limit), and the retry submits a new generation.
TIMEOUT: dict[str, Any] = {"execution_timeout": timedelta(seconds=15), **RETRY}
with DAG("timed_out", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(task_id="job", provider="databricks_long", spec=SPEC, **TIMEOUT)

with DAG("timed_out_deferred", schedule=None, start_date=START, catchup=False):
    TetherJobOperator(
        task_id="job", provider="databricks_long", spec=SPEC, deferrable=True, **TIMEOUT
    )

# 16. Checkpoints: a task works through 5,000 items, recording each in a file as it does it;
# it is SIGKILLed part-way, and its retry resumes from the checkpoint.
CHECKPOINT_ITEMS = 5000
CHECKPOINT_FLUSH_EVERY = 200
CHECKPOINT_SEEN = Path(__file__).resolve().parent.parent / "checkpoint-seen.txt"

with DAG("checkpointed", schedule=None, start_date=START, catchup=False):

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def convert(**context: Any) -> dict[str, int]:
        done = skipped = 0
        with (
            TetherCheckpoint.from_context(context, flush_every=CHECKPOINT_FLUSH_EVERY) as cp,
            CHECKPOINT_SEEN.open("a", buffering=1) as seen,
        ):
            for item in range(CHECKPOINT_ITEMS):
                name = f"s3://landing/orders/part-{item:05}.json"
                if cp.done(name):
                    skipped += 1
                    continue
                time.sleep(0.003)  # the work
                seen.write(name + "\n")
                cp.mark(name)
                done += 1
        return {"processed": done, "skipped": skipped}

    convert()
