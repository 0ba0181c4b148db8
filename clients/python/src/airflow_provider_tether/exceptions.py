"""Errors of the tether provider: what tether answered, and jobs that did not succeed."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class TetherApiError(AirflowException):
    """tether answered with an error: its HTTP status, its stable error code
    (``invalid_request``, ``forbidden``, ``not_found``, ``version_conflict``,
    ``unavailable``, ...) and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"tether: {code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


class TetherJobFailed(AirflowException):
    """The remote job ended unsuccessfully (failed, cancelled or lost)."""

    def __init__(self, job_id: int, state: str, message: str) -> None:
        super().__init__(f"tether job {job_id} {state}: {message}")
        self.job_id = job_id
        self.state = state
