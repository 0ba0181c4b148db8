"""The DAGs of the triggerer benchmark (tests/deployment/triggerer_cost.py): N deferred tasks
waiting for N long Databricks runs, through tether or through Airflow's own trigger.

N and the polling period come from the environment the benchmark gives Airflow's processes.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator
from airflow.sdk import DAG

from airflow_provider_tether.operators.job import TetherJobOperator

TASKS = int(os.environ.get("TETHER_BENCH_TASKS", "200"))
CADENCE = int(os.environ.get("TETHER_BENCH_CADENCE", "30"))
START = datetime(2026, 1, 1)
# A 2-core machine starting 200 tasks at once can time a task's call to Airflow's API server out.
RETRY = {"retries": 3, "retry_delay": timedelta(seconds=5)}


def spec(i: int) -> dict[str, object]:
    return {
        "run_name": f"cost-{i}",
        "tasks": [{"task_key": "t", "spark_python_task": {"python_file": "dbfs:/load.py"}}],
    }


# tether: each task ensures its run through tether and defers to TetherJobTrigger, which
# long-polls tether; tether polls Databricks (coalesced, every CADENCE seconds).
with DAG("cost_tether", schedule=None, start_date=START, catchup=False, max_active_tasks=TASKS):
    TetherJobOperator.partial(
        task_id="job", provider="databricks", deferrable=True, **RETRY
    ).expand(spec=[spec(i) for i in range(TASKS)])

# Airflow's own: each task submits its run and defers to DatabricksExecutionTrigger, which
# calls runs/get every CADENCE seconds.
with DAG("cost_airflow", schedule=None, start_date=START, catchup=False, max_active_tasks=TASKS):
    DatabricksSubmitRunOperator.partial(
        task_id="submit", deferrable=True, polling_period_seconds=CADENCE, **RETRY
    ).expand(json=[spec(i) for i in range(TASKS)])
