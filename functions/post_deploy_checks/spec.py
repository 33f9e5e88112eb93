"""Check specs: the action's ``UserParameters`` (or a CodeDeploy hook's ``CHECKS``) parsed into typed specs.

:func:`parse_config` returns a :class:`ChecksConfig` or raises :class:`ConfigurationError` naming every
problem at once. Pure: no boto3, no environment, no network; the settings models import it, so synth
validates checks exactly as the function will.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from shared.names import is_secret_name
from shared.text import truncate

# CodePipeline limits (botocore service model): failureDetails.message 1-5000 characters,
# executionDetails.summary 1-2048, continuationToken 1-2048.
MAX_FAILURE_MESSAGE = 5000
MAX_SUMMARY = 2048
MAX_TOKEN = 2048
# An action's configuration values (UserParameters among them) are at most 1,000 characters.
MAX_USER_PARAMETERS = 1000

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_CHECKS = 50
MAX_ATTEMPTS = 10
MAX_INTERVAL_SECONDS = 300
MAX_TIMEOUT_SECONDS = 60
MAX_STABILIZE_SECONDS = 3600
MAX_BAKE_SECONDS = 3600
MIN_BAKE_INTERVAL_SECONDS = 10
MAX_BAKE_INTERVAL_SECONDS = 3600
MAX_ALARMS = 100
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TOP_KEYS = ("checks", "alarms", "attempts", "interval_seconds", "timeout_seconds", "stabilize_seconds",
             "bake_seconds", "bake_interval_seconds")
_CHECK_KEYS = ("name", "url", "method", "headers", "expect_status", "body_contains", "json", "max_latency_ms")


class ConfigurationError(ValueError):
    """The checks configuration (UserParameters / CHECKS) is malformed; the message names each problem."""


# --------------------------------------------------------------------------- typed configuration


@dataclass(frozen=True)
class HeaderValue:
    """A header's value: a literal, or the name of a Secrets Manager secret (and optional JSON key in it)."""

    literal: str | None = None
    secret: str | None = None
    secret_key: str | None = None

    @property
    def is_secret(self) -> bool:
        return self.secret is not None


@dataclass(frozen=True)
class JsonExpectation:
    """``{"path": "status", "equals": "ok"}``: the value at a dotted path (list indexes as numbers)."""

    path: str
    equals: Any


@dataclass(frozen=True)
class CheckSpec:
    name: str
    url: str
    method: str = "GET"
    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    json: JsonExpectation | None = None
    max_latency_ms: int | None = None

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(value.secret for value in self.headers.values() if value.secret is not None)


@dataclass(frozen=True)
class ChecksConfig:
    checks: tuple[CheckSpec, ...]
    alarms: tuple[str, ...] = ()
    attempts: int = 3
    interval_seconds: float = 10
    timeout_seconds: float = 5
    stabilize_seconds: int = 0
    bake_seconds: int = 0
    bake_interval_seconds: int = 60

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for check in self.checks for name in check.secret_names))

    def worst_case_seconds(self) -> float:
        """Longest time the checks can take: every attempt times out (checks run concurrently)."""
        if not self.checks:
            return 0.0
        return self.attempts * self.timeout_seconds + (self.attempts - 1) * self.interval_seconds


def parse_config(raw: str | Mapping[str, Any] | None, *, source: str = "UserParameters") -> ChecksConfig:
    """Parse and validate the checks configuration; :class:`ConfigurationError` lists every problem."""
    data = _load(raw, source)
    errors: list[str] = []
    unknown = [str(key) for key in data if key not in _TOP_KEYS]
    if unknown:
        errors.append(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_TOP_KEYS)}")
    attempts = _int(data, "attempts", 3, 1, MAX_ATTEMPTS, errors, "attempts")
    interval = _number(data, "interval_seconds", 10, 0, MAX_INTERVAL_SECONDS, errors, "interval_seconds")
    timeout = _number(data, "timeout_seconds", 5, 0.1, MAX_TIMEOUT_SECONDS, errors, "timeout_seconds")
    stabilize = _int(data, "stabilize_seconds", 0, 0, MAX_STABILIZE_SECONDS, errors, "stabilize_seconds")
    bake = _int(data, "bake_seconds", 0, 0, MAX_BAKE_SECONDS, errors, "bake_seconds")
    bake_interval = _int(data, "bake_interval_seconds", 60, MIN_BAKE_INTERVAL_SECONDS, MAX_BAKE_INTERVAL_SECONDS,
                         errors, "bake_interval_seconds")
    checks = _parse_checks(data.get("checks", []), errors)
    alarms = _parse_alarms(data.get("alarms", []), errors)
    if not errors and not checks and not alarms:
        errors.append("nothing to check: give at least one entry in 'checks' or 'alarms'")
    if errors:
        raise ConfigurationError(truncate(f"{source}: " + "; ".join(errors), MAX_FAILURE_MESSAGE))
    return ChecksConfig(
        checks=tuple(checks),
        alarms=tuple(dict.fromkeys(alarms)),
        attempts=attempts,
        interval_seconds=interval,
        timeout_seconds=timeout,
        stabilize_seconds=stabilize,
        bake_seconds=bake,
        bake_interval_seconds=bake_interval,
    )


def _load(raw: str | Mapping[str, Any] | None, source: str) -> Mapping[str, Any]:
    """The configuration as a JSON object (parsed when a string)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ConfigurationError(f"{source} is empty: expected a JSON object with 'checks' and/or 'alarms'")
    data: Any = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source} must be a JSON object, not {_kind(data)}")
    return data


def _parse_checks(raw_checks: Any, errors: list[str]) -> list[CheckSpec]:
    if not isinstance(raw_checks, list):
        errors.append(f"checks: must be a list of objects, not {_kind(raw_checks)}")
        return []
    if len(raw_checks) > MAX_CHECKS:
        errors.append(f"checks: at most {MAX_CHECKS} checks (got {len(raw_checks)})")
    checks = [check for index, item in enumerate(raw_checks[:MAX_CHECKS])
              if (check := _parse_check(item, f"checks[{index}]", errors)) is not None]
    names = [check.name for check in checks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.append(f"checks: duplicate name(s) {', '.join(duplicates)}; each check needs its own name")
    return checks


def _parse_alarms(raw_alarms: Any, errors: list[str]) -> list[str]:
    if not isinstance(raw_alarms, list):
        errors.append(f"alarms: must be a list of alarm names, not {_kind(raw_alarms)}")
        return []
    if len(raw_alarms) > MAX_ALARMS:
        errors.append(f"alarms: at most {MAX_ALARMS} alarm names (got {len(raw_alarms)})")
    alarms: list[str] = []
    for index, name in enumerate(raw_alarms[:MAX_ALARMS]):
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            errors.append(f"alarms[{index}]: must be an alarm name (1-255 characters), got {name!r}")
        else:
            alarms.append(name.strip())
    return alarms


def _parse_check(item: Any, where: str, errors: list[str]) -> CheckSpec | None:
    if not isinstance(item, Mapping):
        errors.append(f"{where}: must be an object, not {_kind(item)}")
        return None
    start = len(errors)
    name = item.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        errors.append(f"{where}.name: required, a string of 1-100 characters")
        name = ""
    else:
        where = f"{where} ({name})"
    unknown = [str(key) for key in item if key not in _CHECK_KEYS]
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_CHECK_KEYS)}")
    url = item.get("url")
    if not isinstance(url, str) or not _is_http_url(url):
        shown = redact_url(url) if isinstance(url, str) else url
        errors.append(f"{where}.url: required, an http:// or https:// URL with a host (got {shown!r})")
        url = ""
    method = item.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        errors.append(f"{where}.method: got {method!r}; allowed values: {', '.join(METHODS)}")
        method = "GET"
    headers = _parse_headers(item.get("headers", {}), f"{where}.headers", errors)
    expect_status = _parse_status(item.get("expect_status", 200), f"{where}.expect_status", errors)
    body_contains = item.get("body_contains")
    if body_contains is not None and (not isinstance(body_contains, str) or not body_contains):
        errors.append(f"{where}.body_contains: must be a non-empty string")
        body_contains = None
    json_expectation = _parse_json(item.get("json"), f"{where}.json", errors)
    max_latency = item.get("max_latency_ms")
    if max_latency is not None and (
        isinstance(max_latency, bool) or not isinstance(max_latency, int) or not 1 <= max_latency <= 600_000
    ):
        errors.append(f"{where}.max_latency_ms: must be a whole number of milliseconds, 1-600000 "
                      f"(got {max_latency!r})")
        max_latency = None
    if method.upper() == "HEAD" and (body_contains is not None or json_expectation is not None):
        errors.append(f"{where}: method HEAD gets no body, so body_contains and json cannot be checked; use GET")
    if len(errors) > start:
        return None
    return CheckSpec(
        name=str(name).strip(),
        url=str(url),
        method=str(method).upper(),
        headers=headers,
        expect_status=expect_status,
        body_contains=body_contains,
        json=json_expectation,
        max_latency_ms=max_latency,
    )


def _parse_headers(raw: Any, where: str, errors: list[str]) -> dict[str, HeaderValue]:
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: must be an object of header name -> value, not {_kind(raw)}")
        return {}
    headers: dict[str, HeaderValue] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _HEADER_NAME.match(key):
            errors.append(f"{where}: {key!r} is not a valid header name")
            continue
        if isinstance(value, str):
            if "\n" in value or "\r" in value:
                errors.append(f"{where}.{key}: a header value cannot contain line breaks")
                continue
            headers[key] = HeaderValue(literal=value)
        elif isinstance(value, Mapping) and set(value) <= {"secret", "key"} and "secret" in value:
            secret = value.get("secret")
            secret_key = value.get("key")
            if not is_secret_name(secret):
                errors.append(f"{where}.{key}.secret: must be a Secrets Manager secret name (got {secret!r})")
                continue
            if secret_key is not None and (not isinstance(secret_key, str) or not secret_key):
                errors.append(f"{where}.{key}.key: must be the name of a key in the secret's JSON value")
                continue
            headers[key] = HeaderValue(secret=secret, secret_key=secret_key)
        else:
            errors.append(f"{where}.{key}: must be a string or {{\"secret\": \"<secret name>\", \"key\": "
                          f"\"<optional JSON key>\"}}, not {_kind(value)}")
    return headers


def _parse_status(raw: Any, where: str, errors: list[str]) -> tuple[int, ...]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        errors.append(f"{where}: give at least one status code")
        return (200,)
    codes: list[int] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            errors.append(f"{where}: {value!r} is not an HTTP status code (100-599)")
            return (200,)
        codes.append(value)
    return tuple(dict.fromkeys(codes))


def _parse_json(raw: Any, where: str, errors: list[str]) -> JsonExpectation | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) != {"path", "equals"}:
        errors.append(f"{where}: must be an object with exactly 'path' and 'equals', e.g. "
                      f"{{\"path\": \"status\", \"equals\": \"ok\"}}")
        return None
    path = raw["path"]
    if not isinstance(path, str) or not path.strip() or any(not part for part in path.split(".")):
        errors.append(f"{where}.path: must be a dotted path such as 'status' or 'checks.0.state' (got {path!r})")
        return None
    return JsonExpectation(path=path.strip(), equals=raw["equals"])


def redact_url(url: str) -> str:
    """``url`` fit for logs and reports: no user:password, every query value replaced, no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(f"{quote(key, safe='')}=***" for key, _ in parse_qsl(parts.query, keep_blank_values=True))
    if parts.query and not query:
        query = "***"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def user_parameters_size_problem(value: Mapping[str, Any], where: str) -> str | None:
    """A message when ``value`` as CodePipeline stores it (compact JSON) is over its 1,000-character limit."""
    size = len(json.dumps(value, separators=(",", ":")))
    if size <= MAX_USER_PARAMETERS:
        return None
    return (f"{where}: {size} characters of JSON, over CodePipeline's limit of {MAX_USER_PARAMETERS} for "
            "UserParameters; shorten the checks or give them to the function's CHECKS setting")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int, errors: list[str],
         where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.append(f"{where}: must be a whole number from {low} to {high} (got {value!r})")
        return default
    return value


def _number(data: Mapping[str, Any], key: str, default: float, low: float, high: float, errors: list[str],
            where: str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        errors.append(f"{where}: must be a number from {low:g} to {high:g} (got {value!r})")
        return default
    return float(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
