"""Shared test setup: fake AWS credentials, Powertools in test mode, fresh boto3 clients."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.fakes import FakeContext

__all__ = ["EVENTS_DIR", "FakeContext", "lambda_context", "load_event"]

# Set before any function module is imported (Powertools reads these at import).
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "opsauto-test",
        "POWERTOOLS_SERVICE_NAME": "test",
        "POWERTOOLS_DEV": "0",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)

EVENTS_DIR = Path(__file__).parent / "events"


@pytest.fixture(autouse=True)
def _aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs with fake credentials and fresh cached boto3 clients."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from shared.clients import reset_clients

    reset_clients()
    yield
    reset_clients()
    from tests.lifetime.kit import SimClock

    SimClock.stop_frozen_clocks()  # a frozen clock never outlives its test


def load_event(name: str) -> Any:
    """A fixture event from tests/events (``name`` relative to it, e.g. ``s3/put.json``)."""
    return json.loads((EVENTS_DIR / name).read_text())


@pytest.fixture
def own_role(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler of the test's automation runs under its synthesized role with moto IAM on (tests/iam/own_role.py)."""
    from tests.iam.own_role import under_own_role

    with under_own_role(request, monkeypatch):
        yield


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


def emf_metrics(out: str) -> dict[str, float]:
    """Each metric's total over the EMF lines Powertools printed (e.g. ``capsys.readouterr().out``)."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = blob[definition["Name"]]
            totals[definition["Name"]] = totals.get(definition["Name"], 0) + (
                sum(value) if isinstance(value, list) else value)
    return totals
