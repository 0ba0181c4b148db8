"""TetherJobOperator: a remote job that survives worker evictions, triggerer restarts and retries.

The operator asks tether to *ensure* its job (submit it once, or reattach to the one already
running for this task instance, per tether's decision table), then waits: in the worker with
tether's long-poll, or (``deferrable=True``) in the triggerer with :class:`TetherJobTrigger`.
A retry after an eviction ensures again and reattaches; it never submits twice. Only a person
stopping the task (mark failed, mark success, clear) cancels the remote job.

When the task completes with the job's result, the operator tells tether that this try
*consumed* it: a later try (a clear, to run the task again) then runs the job anew, where a try
that follows an eviction is told the result of the job that finished while it was gone. On
SIGTERM (a deploy, an eviction) ``on_kill`` leaves the job running and ends the wait at once.

``execution_timeout`` is the user's limit, and ends the job as a person's stop does. A task
waiting in the worker gets Airflow's timeout (``AirflowTaskTimeout``, then ``on_kill``): the
job is cancelled. A deferred task is given the time left of its ``execution_timeout`` as its
deferral timeout (Airflow 3.3 applies none by itself); when it runs out, Airflow resumes the
task only to fail it (``TaskDeferralTimeout``), and the operator cancels the job first. Either
way the cancel names the try, so tether refuses it once a later try owns the job, and a retry
submits a new generation.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

from airflow_provider_tether._compat import conf_boolean
from airflow_provider_tether.client import DEFAULT_CONN_ID, TetherClient
from airflow_provider_tether.exceptions import TetherApiError, TetherJobFailed, TetherTaskStopped
from airflow_provider_tether.hooks.tether import TetherHook
from airflow_provider_tether.kill import stopped_by_a_person
from airflow_provider_tether.links import XCOM_RUN_PAGE_URL_KEY, TetherRunPageLink
from airflow_provider_tether.triggers.job import TetherJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

T = TypeVar("T")


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


def identity_of(ti: Any) -> dict[str, Any]:
    """The task instance and try a job is asked for by (tether's ``POST /v1/jobs`` fields)."""
    return {
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index if ti.map_index is not None else -1,
        "try_number": ti.try_number,
    }


#: How often a waiting ``execute`` looks up from its request: Airflow's SIGTERM handler (which
#: calls ``on_kill``) runs only when the task's main thread does, and a signal that reaches
#: another thread does not interrupt a blocking read of the main one.
_WAKE_EVERY = 0.2


def interruptible(call: Callable[[], T]) -> T:
    """Runs ``call`` (one request to tether, a long-poll perhaps) in a thread of its own while
    the calling thread waits in short slices, so that a signal handler runs in it at once: a
    SIGTERM ends the task within a moment even in the middle of a minute-long poll. What the
    call raises is raised here."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["value"] = call()
        except BaseException as e:
            done["error"] = e

    worker = threading.Thread(target=run, name="tether-request", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(_WAKE_EVERY)
    if "error" in done:
        raise done["error"]
    return cast(T, done["value"])


class TetherJobOperator(BaseOperator):
    """Runs a remote job through tether and waits for it.

    :param provider: the provider account configured in tether (``[providers.NAME]``).
    :param spec: the job spec, the provider's submit body (templated).
    :param job_name: the job's name within the task instance, when a task runs several.
    :param tether_conn_id: the Airflow connection to tether (conn type ``tether``).
    :param deferrable: wait in the triggerer instead of the worker (default:
        ``[operators] default_deferrable``).
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
        deferrable: bool = conf_boolean("operators", "default_deferrable", fallback=False),
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
        #: ``execute`` is waiting for the job: ``on_kill`` (SIGTERM) ends that wait.
        self._waiting = False
        #: ``execution_timeout`` ran out in ``execute``: ``on_kill`` cancels the job.
        self._timed_out = False

    @cached_property
    def hook(self) -> TetherHook:
        return TetherHook(self.tether_conn_id)

    def _client(self) -> TetherClient:
        return self.hook.get_conn()

    def execute(self, context: Context) -> Any:
        ti = context["ti"]
        self._identity = identity = identity_of(ti)
        client = self._client()
        self._waiting = True
        try:
            ensured = interruptible(
                lambda: client.ensure_job(identity, self.provider, self.spec, self.job_name)
            )
        except AirflowTaskTimeout:
            self._timed_out = True
            raise
        finally:
            self._waiting = False
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
        self._waiting = True
        try:
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
                        timeout=self._time_left(ti),
                    )
                answer = interruptible(
                    functools.partial(client.wait_job, job["id"], job["state"], self.wait_seconds)
                )
                if answer["changed"]:
                    job = answer["job"]
                    self.log.info(
                        "tether job %s is %s (%s)", job["id"], job["state"], job.get("raw_state")
                    )
                    self._push_url(context, job)
        except AirflowTaskTimeout:
            self._timed_out = True
            raise
        finally:
            self._waiting = False
        return self._finish(context, job)

    def _time_left(self, ti: Any) -> timedelta | None:
        """What is left of ``execution_timeout`` since this try started: the deferral timeout
        (at least a second; ``None`` without an ``execution_timeout``)."""
        if self.execution_timeout is None:
            return None
        started = getattr(ti, "start_date", None) or datetime.now(timezone.utc)
        left = self.execution_timeout - (datetime.now(timezone.utc) - started)
        return max(left, timedelta(seconds=1))

    def resume_execution(
        self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context
    ) -> Any:
        """As Airflow's, but a deferral that ran out of ``execution_timeout`` cancels the job
        before the task fails (Airflow calls no ``on_kill`` then)."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            self._identity = identity_of(context["ti"])
            self._cancel_for_timeout()
            raise

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        job = event["job"]
        self._push_url(context, job)
        return self._finish(context, job)

    def _push_url(self, context: Context, job: dict[str, Any]) -> None:
        if job.get("url"):
            context["ti"].xcom_push(key=XCOM_RUN_PAGE_URL_KEY, value=job["url"])

    def _finish(self, context: Context, job: dict[str, Any]) -> Any:
        self._consume(context["ti"].try_number, job)
        if job["state"] == "succeeded":
            return summary(job)
        message = job.get("message") or job.get("raw_state") or "no message from the provider"
        raise TetherJobFailed(job["id"], job["state"], message)

    def _consume(self, try_number: int, job: dict[str, Any]) -> None:
        """Tells tether this try took the job's result. If it cannot be told, the task still
        completes: a later clear is then told this result instead of running the job again."""
        try:
            self._client().consume_job(job["id"], try_number)
        except Exception as e:
            self.log.warning(
                "tether job %s: could not record that try %s took its result (%s); clearing "
                "this task will report the result rather than run the job again",
                job["id"],
                try_number,
                e,
            )

    def _cancel_for_timeout(self) -> None:
        """Cancels this task instance's job because ``execution_timeout`` ran out: the job of
        this run of ``execute``, or (the task timed out while asking for it, or resumed from
        a deferral) the newest job tether has for the task instance under this name."""
        i = self._identity
        if i is None:
            return
        client = self._client()
        job_id = self._job_id
        if job_id is None:
            found = client.find_job(i, self.job_name)
            if found is None or found["phase"] == "terminal":
                self.log.info("execution_timeout ran out; no running tether job to cancel")
                return
            job_id = found["id"]
        reason = f"the Airflow task's execution_timeout ({self.execution_timeout}) ran out"
        try:
            client.cancel_job(job_id, reason, i["try_number"])
            self.log.info("tether job %s cancelled: %s", job_id, reason)
        except TetherApiError as e:
            if e.code != "cancel_refused":
                raise
            self.log.info("tether job %s left running: %s", job_id, e.message)

    def on_kill(self) -> None:
        """Cancels the remote job if a person stopped the task or its ``execution_timeout``
        ran out; a SIGTERM on deploy reaches this method too, and then the job is left running
        for the retry. Either way a wait in progress ends at once (Airflow's SIGTERM handler
        returns into it)."""
        if self._timed_out:
            self._cancel_for_timeout()
            return
        if self._job_id is None or self._identity is None:
            if self._waiting:  # still asking for the job: tether finishes that by itself
                raise TetherTaskStopped(None, cancelled=False)
            return
        i = self._identity
        cancelled = False
        if stopped_by_a_person(i["dag_id"], i["run_id"], i["task_id"], i["map_index"]):
            try:
                self._client().cancel_job(
                    self._job_id, "the Airflow task was stopped by a user", i["try_number"]
                )
                cancelled = True
                self.log.info(
                    "tether job %s cancelled: the task was stopped by a user", self._job_id
                )
            except TetherApiError as e:
                if e.code != "cancel_refused":
                    raise
                self.log.info("tether job %s left running: %s", self._job_id, e.message)
        else:
            self.log.info("tether job %s left running: not stopped by a person", self._job_id)
        if self._waiting:
            raise TetherTaskStopped(self._job_id, cancelled)
