"""The only module of this function that calls AWS: reading the destinations secret."""

from __future__ import annotations

from aws_lambda_powertools.utilities import parameters

# Seconds a fetched secret value is reused by warm invocations; a changed secret is picked up after this.
SECRET_MAX_AGE_SECONDS = 300


def read_destinations_secret(secret_arn: str, max_age: int = SECRET_MAX_AGE_SECONDS) -> str:
    """The secret's current string value, cached for ``max_age`` seconds (Powertools parameters).

    Errors reading it (throttling, KMS, access) propagate: the invocation fails and Lambda retries,
    then the on-failure queue keeps the event.
    """
    value = parameters.get_secret(secret_arn, max_age=max_age)
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def clear_cache() -> None:
    """Forget cached secret values (tests; a forced refresh)."""
    parameters.clear_caches()  # type: ignore[no-untyped-call]
