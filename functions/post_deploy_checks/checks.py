"""Pure decisions of post-deployment checks: no boto3, no environment, no network.

- :func:`parse_config` turns the action's ``UserParameters`` (or the ``CHECKS`` variable) into typed
  check specs, or raises :class:`ConfigurationError` naming every problem;
- :func:`evaluate` judges one HTTP response against a check's expectations;
- :func:`evaluate_alarm` judges one CloudWatch alarm state;
- :func:`summarize` turns the results into counts, an ``executionDetails`` summary and a failure message
  that fit CodePipeline's limits;
- :func:`stabilize_decision` and the token helpers implement "wait without paying for it" with
  CodePipeline continuation tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

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
MAX_ALARMS = 100
TOKEN_KIND = "post_deploy_checks/stabilize"  # noqa: S105 (a label, not a secret)
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TOP_KEYS = ("checks", "alarms", "attempts", "interval_seconds", "timeout_seconds", "stabilize_seconds")
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
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ConfigurationError(f"{source} is empty: expected a JSON object with 'checks' and/or 'alarms'")
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source} must be a JSON object, not {_kind(data)}")
    errors: list[str] = []
    unknown = [str(key) for key in data if key not in _TOP_KEYS]
    if unknown:
        errors.append(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(_TOP_KEYS)}")

    attempts = _int(data, "attempts", 3, 1, MAX_ATTEMPTS, errors, "attempts")
    interval = _number(data, "interval_seconds", 10, 0, MAX_INTERVAL_SECONDS, errors, "interval_seconds")
    timeout = _number(data, "timeout_seconds", 5, 0.1, MAX_TIMEOUT_SECONDS, errors, "timeout_seconds")
    stabilize = _int(data, "stabilize_seconds", 0, 0, MAX_STABILIZE_SECONDS, errors, "stabilize_seconds")

    checks: list[CheckSpec] = []
    raw_checks = data.get("checks", [])
    if not isinstance(raw_checks, list):
        errors.append(f"checks: must be a list of objects, not {_kind(raw_checks)}")
        raw_checks = []
    if len(raw_checks) > MAX_CHECKS:
        errors.append(f"checks: at most {MAX_CHECKS} checks (got {len(raw_checks)})")
    for index, item in enumerate(raw_checks[:MAX_CHECKS]):
        check = _parse_check(item, f"checks[{index}]", errors)
        if check is not None:
            checks.append(check)
    names = [check.name for check in checks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        errors.append(f"checks: duplicate name(s) {', '.join(duplicates)}; each check needs its own name")

    alarms: list[str] = []
    raw_alarms = data.get("alarms", [])
    if not isinstance(raw_alarms, list):
        errors.append(f"alarms: must be a list of alarm names, not {_kind(raw_alarms)}")
        raw_alarms = []
    if len(raw_alarms) > MAX_ALARMS:
        errors.append(f"alarms: at most {MAX_ALARMS} alarm names (got {len(raw_alarms)})")
    for index, name in enumerate(raw_alarms[:MAX_ALARMS]):
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            errors.append(f"alarms[{index}]: must be an alarm name (1-255 characters), got {name!r}")
        else:
            alarms.append(name.strip())

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
    )


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
            if not isinstance(secret, str) or not _SECRET_NAME.match(secret):
                errors.append(f"{where}.{key}.secret: must be a Secrets Manager secret name or ARN (got {secret!r})")
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


# --------------------------------------------------------------------------- evaluating responses


@dataclass(frozen=True)
class HttpResponse:
    """What the runner observed for one request. ``body_error``: why the body has no text (an unknown
    charset); only a body check fails on it."""

    status: int
    body: str
    latency_ms: float
    body_error: str = ""


@dataclass(frozen=True)
class CheckResult:
    name: str
    url: str
    passed: bool
    status: int | None
    latency_ms: float | None
    attempts: int
    reason: str = ""

    def line(self) -> str:
        status = str(self.status) if self.status is not None else "no response"
        latency = f"{self.latency_ms:.0f} ms" if self.latency_ms is not None else "-"
        verdict = "passed" if self.passed else f"FAILED: {self.reason}"
        return f"{self.name} ({status}, {latency}, {self.attempts} attempt(s)): {verdict}"


@dataclass(frozen=True)
class AlarmResult:
    name: str
    state: str | None
    passed: bool
    reason: str = ""

    def line(self) -> str:
        verdict = "passed" if self.passed else f"FAILED: {self.reason}"
        return f"alarm {self.name} ({self.state or 'not found'}): {verdict}"


_NO_VALUE = object()


def evaluate(spec: CheckSpec, response: HttpResponse) -> str | None:
    """None when ``response`` meets every expectation of ``spec``; otherwise the first reason it does not."""
    if response.status not in spec.expect_status:
        expected = " or ".join(str(code) for code in spec.expect_status)
        return f"status {response.status}, expected {expected}"
    if spec.max_latency_ms is not None and response.latency_ms > spec.max_latency_ms:
        return f"latency {response.latency_ms:.0f} ms over max_latency_ms {spec.max_latency_ms}"
    if response.body_error and (spec.body_contains is not None or spec.json is not None):
        checked = "body_contains" if spec.body_contains is not None else "json"
        return f"{response.body_error}, so {checked} cannot be checked"
    if spec.body_contains is not None and spec.body_contains not in response.body:
        return f"body does not contain {_clip(spec.body_contains, 80)!r}"
    if spec.json is not None:
        try:
            document = json.loads(response.body)
        except ValueError:
            return f"body is not JSON, so json path {spec.json.path!r} cannot be checked"
        actual = json_path(document, spec.json.path)
        if actual is _NO_VALUE:
            return f"json path {spec.json.path!r} not found"
        if actual != spec.json.equals or isinstance(actual, bool) != isinstance(spec.json.equals, bool):
            return f"json path {spec.json.path!r} is {_clip(json.dumps(actual), 80)}, expected " \
                   f"{_clip(json.dumps(spec.json.equals), 80)}"
    return None


def json_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``checks.0.state``); a private sentinel when absent."""
    current = document
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit() and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return _NO_VALUE
    return current


def evaluate_alarm(name: str, state: str | None) -> AlarmResult:
    """An alarm passes unless it is in ALARM; a missing alarm fails (a typo must not pass silently)."""
    if state is None:
        return AlarmResult(name, None, False, "alarm not found")
    if state == "ALARM":
        return AlarmResult(name, state, False, "alarm is in ALARM")
    return AlarmResult(name, state, True)


# --------------------------------------------------------------------------- summarizing


@dataclass(frozen=True)
class Outcome:
    passed: bool
    checks_passed: int
    checks_failed: int
    summary: str
    failure_message: str
    results: tuple[CheckResult, ...] = ()
    alarms: tuple[AlarmResult, ...] = ()

    @property
    def output_variables(self) -> dict[str, str]:
        return {"checks_passed": str(self.checks_passed), "checks_failed": str(self.checks_failed)}


def summarize(results: Sequence[CheckResult], alarms: Sequence[AlarmResult] = ()) -> Outcome:
    """Counts (alarms count as checks), a summary for executionDetails and a failure message naming each failure."""
    passed = sum(1 for r in results if r.passed) + sum(1 for a in alarms if a.passed)
    failed = len(results) + len(alarms) - passed
    headline = f"{passed} of {passed + failed} check(s) passed"
    lines = [r.line() for r in results] + [a.line() for a in alarms]
    summary = _join_limited(f"{headline}" + (f", {failed} failed" if failed else ""), lines, MAX_SUMMARY)
    failures = [r.line() for r in results if not r.passed] + [a.line() for a in alarms if not a.passed]
    failure_message = ""
    if failed:
        failure_message = _join_limited(f"{failed} of {passed + failed} check(s) failed", failures,
                                        MAX_FAILURE_MESSAGE)
    return Outcome(failed == 0, passed, failed, summary, failure_message, tuple(results), tuple(alarms))


def _join_limited(headline: str, lines: Sequence[str], limit: int) -> str:
    """``headline: line; line; ...`` within ``limit`` characters, saying how many lines were left out."""
    text = headline
    for index, line in enumerate(lines):
        candidate = f"{text}{': ' if index == 0 else '; '}{_clip(line, 400)}"
        rest = len(lines) - index - 1
        reserve = len(f"; ... and {rest} more") if rest else 0
        if len(candidate) + reserve > limit:
            return truncate(f"{text}; ... and {len(lines) - index} more", limit)
        text = candidate
    return truncate(text, limit)


def _clip(text: str, limit: int) -> str:
    return truncate(text, limit, "…")


# --------------------------------------------------------------------------- waiting with continuation tokens


@dataclass(frozen=True)
class Wait:
    """Not yet: report success with this continuation token; CodePipeline invokes the function again."""

    token: str
    ready_at: datetime


@dataclass(frozen=True)
class RunNow:
    """Run the checks now."""


def make_token(ready_at: datetime) -> str:
    return json.dumps({"kind": TOKEN_KIND, "ready_at": ready_at.astimezone(UTC).isoformat()}, sort_keys=True)


def parse_token(token: str) -> datetime:
    """The ready-at time of a token this function made; ConfigurationError for anything else."""
    try:
        data = json.loads(token)
        if not isinstance(data, dict) or data.get("kind") != TOKEN_KIND:
            raise ValueError("not a post_deploy_checks token")
        ready_at = datetime.fromisoformat(str(data["ready_at"]))
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("continuationToken was not made by post_deploy_checks "
                                 f"(got {_clip(token, 60)!r})") from None
    if ready_at.tzinfo is None:
        ready_at = ready_at.replace(tzinfo=UTC)
    return ready_at


def stabilize_decision(now: datetime, stabilize_seconds: int, token: str | None) -> Wait | RunNow:
    """First invocation with ``stabilize_seconds`` > 0: wait until now + stabilize_seconds.

    Re-invocation with our token: wait again (same ready-at time) until it has passed, then run.
    """
    if token:
        ready_at = parse_token(token)
        return RunNow() if now >= ready_at else Wait(token, ready_at)
    if stabilize_seconds <= 0:
        return RunNow()
    ready_at = now + timedelta(seconds=stabilize_seconds)
    return Wait(make_token(ready_at), ready_at)
