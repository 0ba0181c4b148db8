"""TetherHook reads an Airflow connection; the provider registers with Airflow as Airflow's own
provider packages do; the client and the waiter import nothing of Airflow."""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import pytest

from airflow_provider_tether.client import TetherClient
from airflow_provider_tether.get_provider_info import get_provider_info
from airflow_provider_tether.hooks.tether import TetherHook


def connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    import json

    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "tether", **fields})
    )


def test_the_connection_makes_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(
        monkeypatch,
        "tether_unit",
        host="https://tether.example/",
        port=8443,
        password="secret",
        extra={"timeout": 12, "attempts": 2},
    )
    hook = TetherHook("tether_unit")
    endpoint = hook.endpoint()
    assert endpoint.base_url == "https://tether.example:8443"
    assert (endpoint.token, endpoint.timeout, endpoint.attempts) == ("secret", 12.0, 2)
    client = hook.get_conn()
    assert isinstance(client, TetherClient) and client.endpoint == endpoint
    assert hook.get_conn() is client, "one client per hook"


def test_defaults_of_a_bare_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, "tether_bare", host="10.0.0.5", schema="http")
    endpoint = TetherHook("tether_bare").endpoint()
    assert (endpoint.base_url, endpoint.token) == ("http://10.0.0.5", None)
    assert (endpoint.timeout, endpoint.attempts) == (30.0, 6)


@pytest.mark.parametrize(
    ("extra", "named"), [({"timeout": "soon"}, "timeout"), ({"attempts": 0}, "attempts")]
)
def test_bad_extras_are_named(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], named: str
) -> None:
    connection(monkeypatch, "tether_bad", host="h", extra=extra)
    with pytest.raises(ValueError, match=f"tether_bad.*{named}"):
        TetherHook("tether_bad").endpoint()


def test_provider_info_follows_airflows_schema() -> None:
    import json
    from importlib.resources import files

    import jsonschema

    info = get_provider_info()
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(info, schema)
    integrations = {i["integration-name"] for i in info["integrations"]}
    used = {
        e["integration-name"] for part in ("hooks", "operators", "triggers") for e in info[part]
    }
    assert used <= integrations, f"{used - integrations} named but not declared"


def test_airflow_sees_the_connection_type_and_the_extra_link() -> None:
    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ProvidersManager.hooks moves to the task SDK later
        manager = ProvidersManager()  # type: ignore[no-untyped-call]
        hook = manager.hooks["tether"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_tether.hooks.tether.TetherHook"
    assert "airflow_provider_tether.links.TetherRunPageLink" in manager.extra_links_class_names


def test_the_client_and_the_waiter_work_without_airflow() -> None:
    """A script (or another scheduler) imports the client where Airflow cannot be imported."""
    script = """
import sys
class NoAirflow:
    def find_spec(self, name, path=None, target=None):
        if name == "airflow" or name.startswith("airflow."):
            raise ImportError(f"{name} is blocked")
        return None
sys.meta_path.insert(0, NoAirflow())
import httpx
from airflow_provider_tether.client import TetherClient, TetherEndpoint
from airflow_provider_tether.waiter import wait_for_change
client = TetherClient(
    TetherEndpoint(base_url="http://x", token="t"),
    transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"version": "1"})),
)
assert client.info() == {"version": "1"}
assert not any(m == "airflow" or m.startswith("airflow.") for m in sys.modules)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
