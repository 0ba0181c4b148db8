"""Unit tests: the package with tether's HTTP API mocked (``fake.FakeTether``); no tether
binary, no Airflow deployment. Retries wait no time here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tenacity

from .fake import FakeTether


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client's jittered backoff, made instant (its policy is what is tested)."""
    monkeypatch.setattr(tenacity, "wait_random_exponential", lambda **_: tenacity.wait_none())
    yield


@pytest.fixture
def fake() -> FakeTether:
    return FakeTether()
