"""TetherHook: Airflow's way to reach tether, through an Airflow connection of type ``tether``.

The hook reads the connection and gives a :class:`~airflow_provider_tether.client.TetherClient`
(``get_conn()``), which owns every HTTP call; the shared long-poll of the triggerer is
:mod:`airflow_provider_tether.waiter`. Both live in modules of their own that import nothing of
Airflow, as Airflow's provider packages keep their API clients apart from their hooks.
"""

from __future__ import annotations

from typing import Any

import httpx
from airflow.sdk import BaseHook

from airflow_provider_tether.client import (
    DEFAULT_ATTEMPTS,
    DEFAULT_CONN_ID,
    DEFAULT_TIMEOUT,
    Scope,
    TetherApiError,
    TetherClient,
    TetherEndpoint,
    endpoint_from_env,
    raise_for,
)

__all__ = [
    "DEFAULT_CONN_ID",
    "Scope",
    "TetherClient",
    "TetherEndpoint",
    "TetherHook",
    "endpoint_from_env",
]


class TetherHook(BaseHook):
    """An Airflow connection of type ``tether``.

    The connection's host, port and schema (``http`` or ``https``) make the base URL; its
    password is the API token (an admin token, or a task token that tether signed). Extra
    fields: ``timeout`` (seconds per request, beyond a long poll's own time; default 30) and
    ``attempts`` (tries of one call on connection errors, 503 and 429; default 6).
    """

    conn_name_attr = "tether_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "tether"
    hook_name = "tether"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "API token", "schema": "Scheme (http or https)"},
            "placeholders": {
                "host": "127.0.0.1",
                "port": "8470",
                "schema": "http",
                "extra": '{"timeout": 30, "attempts": 6}',
            },
        }

    def __init__(self, tether_conn_id: str = DEFAULT_CONN_ID) -> None:
        super().__init__()
        self.tether_conn_id = tether_conn_id
        self._client: TetherClient | None = None

    def endpoint(self) -> TetherEndpoint:
        """Where tether is, from the connection (a scheme in the host wins over ``schema``)."""
        conn = self.get_connection(self.tether_conn_id)
        scheme = conn.schema or "http"
        host = conn.host or "127.0.0.1"
        if "://" in host:
            scheme, host = host.split("://", 1)
        port = f":{conn.port}" if conn.port else ""
        extra = conn.extra_dejson
        try:
            timeout = float(extra.get("timeout", DEFAULT_TIMEOUT))
            attempts = int(extra.get("attempts", DEFAULT_ATTEMPTS))
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"connection {self.tether_conn_id!r}: extra 'timeout' must be a number of "
                f"seconds and 'attempts' a whole number ({e})"
            ) from e
        if timeout <= 0 or attempts < 1:
            raise ValueError(
                f"connection {self.tether_conn_id!r}: extra 'timeout' must be above 0 and "
                f"'attempts' at least 1 (got {timeout} and {attempts})"
            )
        return TetherEndpoint(
            base_url=f"{scheme}://{host.rstrip('/')}{port}",
            token=conn.password or None,
            timeout=timeout,
            attempts=attempts,
        )

    def get_conn(self) -> TetherClient:
        """The client for this connection (made once per hook)."""
        if self._client is None:
            self._client = TetherClient(self.endpoint())
        return self._client

    def test_connection(self) -> tuple[bool, str]:
        """What Airflow's "Test" button shows: tether is reachable, ready, and takes the token."""
        endpoint = self.endpoint()
        try:
            with httpx.Client(timeout=endpoint.timeout, headers=endpoint.headers) as http:
                ready = http.get(f"{endpoint.base_url}/readyz")
                if ready.status_code != 200:
                    return False, f"tether at {endpoint.base_url} is not ready: {ready.text}"
                listed = http.get(f"{endpoint.base_url}/v1/jobs", params={"limit": 1})
                raise_for(listed)
        except httpx.HTTPError as e:
            return False, f"cannot reach tether at {endpoint.base_url}: {e}"
        except TetherApiError as e:
            return False, f"tether refused the token: {e}"
        return True, f"tether at {endpoint.base_url} is ready and accepts the token"
