"""boto3 clients with adaptive retries, one per (service, region), reused across invocations."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="aws-ops-automations",
)


@lru_cache(maxsize=64)
def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` in ``region`` (default: the session's region)."""
    session = boto3.session.Session()
    return session.client(service, region_name=region, config=RETRY_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests start a fresh moto backend per test)."""
    client.cache_clear()
