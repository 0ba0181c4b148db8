"""Errors of the tether provider: what tether answered (:class:`TetherApiError`, defined with
the client, which imports nothing of Airflow), and jobs that did not succeed."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException

from airflow_provider_tether.client import TetherApiError

__all__ = ["TetherApiError", "TetherJobFailed", "TetherTaskStopped"]


class TetherJobFailed(AirflowException):
    """The remote job did not succeed: failed, cancelled, lost, or ``outcome_unknown`` (the
    provider forgot it after reporting it; a retry submits nothing until a person settles it
    with ``tether jobs resolve``, which the message says)."""

    def __init__(self, job_id: int, state: str, message: str) -> None:
        super().__init__(f"tether job {job_id} {state}: {message}")
        self.job_id = job_id
        self.state = state


class TetherTaskStopped(BaseException):
    """The task process was told to stop (SIGTERM: a deploy, an eviction) while it waited for
    its job. Raised from ``on_kill`` so that the task ends within a moment instead of waiting
    out the grace period; the remote job keeps running and the retry reattaches to it.

    A ``BaseException``, as Airflow's own interruptions are, so that no ``except Exception``
    on the way swallows it; Airflow treats it as a failure of this try (retried as usual)."""

    def __init__(self, job_id: int | None, cancelled: bool) -> None:
        if job_id is None:
            text = "the task was stopped while it asked tether for its job; the retry finds it"
        else:
            what = (
                "cancelled (the task was stopped by a user)"
                if cancelled
                else "left running: the retry reattaches to it"
            )
            text = (
                f"the task was stopped while it waited for tether job {job_id}; the job is {what}"
            )
        super().__init__(text)
        self.job_id = job_id
        self.cancelled = cancelled
