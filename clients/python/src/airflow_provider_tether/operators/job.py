"""TetherJobOperator: a remote job that survives worker evictions, triggerer restarts and retries.

The operator asks tether to *ensure* its job (submit it once, or reattach to the one already
running for this task instance, per tether's decision table), then waits: in the worker with
tether's long-poll, or (``deferrable=True``) in the triggerer with :class:`TetherJobTrigger`.
A retry after an eviction ensures again and reattaches; it never submits twice. Only a person
stopping the task (mark failed, mark success, clear) cancels the remote job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_provider_tether.exceptions import TetherJobFailed
from airflow_provider_tether.hooks.tether import DEFAULT_CONN_ID, TetherClient, TetherHook
from airflow_provider_tether.kill import stopped_by_a_person
from airflow_provider_tether.links import XCOM_RUN_PAGE_URL_KEY, TetherRunPageLink
from airflow_provider_tether.triggers.job import TetherJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """What a finished task returns (its XCom return value)."""
    return {
        "job_id": job["id"],
        "provider": job["provider"],
        "handle": job.get("handle"),
        "url": job.get("url"),
        "state": job["state"],
        "raw_state": job.get("raw_state"),
        "generation": job["generation"],
    }


class TetherJobOperator(BaseOperator):
    """Runs a remote job through tether and waits for it.

    :param provider: the provider account configured in tether (``[providers.NAME]``).
    :param spec: the job spec, the provider's submit body (templated).
    :param job_name: the job's name within the task instance, when a task runs several.
    :param tether_conn_id: the Airflow connection to tether (conn type ``tether``).
    :param deferrable: wait in the triggerer instead of the worker.
    :param wait_seconds: how long one long-poll waits at most.
    """

    template_fields: Sequence[str] = ("spec", "provider", "job_name")
    template_fields_renderers: ClassVar[dict[str, str]] = {"spec": "json"}
    operator_extra_links = (TetherRunPageLink(),)
    ui_color = "#dfe8f6"

    def __init__(
        self,
        *,
        provider: str,
        spec: dict[str, Any],
        job_name: str = "main",
        tether_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = False,
        wait_seconds: int = 60,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.provider = provider
        self.spec = spec
        self.job_name = job_name
        self.tether_conn_id = tether_conn_id
        self.deferrable = deferrable
        self.wait_seconds = wait_seconds
        self._job_id: int | None = None
        self._identity: dict[str, Any] | None = None

    def _client(self) -> TetherClient:
        return TetherHook(self.tether_conn_id).client()

    def execute(self, context: Context) -> Any:
        ti = context["ti"]
        self._identity = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "map_index": ti.map_index if ti.map_index is not None else -1,
            "try_number": ti.try_number,
        }
        client = self._client()
        ensured = client.ensure_job(self._identity, self.provider, self.spec, self.job_name)
        job = ensured["job"]
        self._job_id = job["id"]
        self.log.info(
            "tether job %s (%s, generation %s): %s; handle %s",
            job["id"],
            job["name"],
            job["generation"],
            ensured["action"],
            job.get("handle"),
        )
        for warning in job.get("warnings", []):
            self.log.warning("tether: %s", warning)
        self._push_url(context, job)
        while job["phase"] != "terminal":
            if self.deferrable:
                self.defer(
                    trigger=TetherJobTrigger(
                        job_id=job["id"],
                        tether_conn_id=self.tether_conn_id,
                        state=job["state"],
                        wait_seconds=self.wait_seconds,
                    ),
                    method_name="execute_complete",
                )
            answer = client.wait_job(job["id"], job["state"], self.wait_seconds)
            if answer["changed"]:
                job = answer["job"]
                self.log.info(
                    "tether job %s is %s (%s)", job["id"], job["state"], job.get("raw_state")
                )
                self._push_url(context, job)
        return self._finish(job)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        job = event["job"]
        self._push_url(context, job)
        return self._finish(job)

    def _push_url(self, context: Context, job: dict[str, Any]) -> None:
        if job.get("url"):
            context["ti"].xcom_push(key=XCOM_RUN_PAGE_URL_KEY, value=job["url"])

    def _finish(self, job: dict[str, Any]) -> Any:
        if job["state"] == "succeeded":
            return summary(job)
        message = job.get("message") or job.get("raw_state") or "no message from the provider"
        raise TetherJobFailed(job["id"], job["state"], message)

    def on_kill(self) -> None:
        """Cancels the remote job, but only if a person stopped the task: a SIGTERM on deploy
        reaches this method too, and then the job is left running for the retry."""
        if self._job_id is None or self._identity is None:
            return
        i = self._identity
        if not stopped_by_a_person(i["dag_id"], i["run_id"], i["task_id"], i["map_index"]):
            self.log.info("tether job %s left running: not stopped by a person", self._job_id)
            return
        self._client().cancel_job(self._job_id, "the Airflow task was stopped by a user")
        self.log.info("tether job %s cancelled: the task was stopped by a user", self._job_id)
