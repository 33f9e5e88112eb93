"""The pure part: parsing UserParameters, judging responses, summaries, continuation tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from post_deploy_checks import evaluate, spec
from post_deploy_checks.evaluate import AlarmResult, CheckResult, HttpResponse
from post_deploy_checks.spec import CheckSpec, ConfigurationError, HeaderValue, JsonExpectation

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_parse_full_configuration() -> None:
    config = spec.parse_config(json.dumps({
        "checks": [{
            "name": "api", "url": "https://api.example/health", "method": "post",
            "headers": {"X-Env": "prod", "Authorization": {"secret": "api-token", "key": "header"}},
            "expect_status": [200, 204], "body_contains": "ok", "json": {"path": "status", "equals": "ok"},
            "max_latency_ms": 800,
        }],
        "alarms": ["api-5xx", "api-5xx"],
        "attempts": 5, "interval_seconds": 2.5, "timeout_seconds": 3, "stabilize_seconds": 120,
    }))
    (check,) = config.checks
    assert check == CheckSpec(
        name="api", url="https://api.example/health", method="POST",
        headers={"X-Env": HeaderValue(literal="prod"),
                 "Authorization": HeaderValue(secret="api-token", secret_key="header")},
        expect_status=(200, 204), body_contains="ok", json=JsonExpectation("status", "ok"), max_latency_ms=800,
    )
    assert config.alarms == ("api-5xx",)
    assert (config.attempts, config.interval_seconds, config.timeout_seconds, config.stabilize_seconds) == (
        5, 2.5, 3.0, 120)
    assert config.secret_names == ("api-token",)
    assert config.worst_case_seconds() == 5 * 3 + 4 * 2.5


def test_defaults() -> None:
    config = spec.parse_config({"checks": [{"name": "a", "url": "http://a.example/"}]})
    assert config.attempts == 3 and config.interval_seconds == 10 and config.timeout_seconds == 5
    assert config.stabilize_seconds == 0 and config.alarms == ()
    assert config.checks[0].method == "GET" and config.checks[0].expect_status == (200,)


def test_alarms_only_is_valid() -> None:
    assert spec.parse_config({"alarms": ["x"]}).checks == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "UserParameters is empty"),
        ("   ", "UserParameters is empty"),
        ('{"checks": [', "UserParameters is not valid JSON: Expecting value at line 1 column 13"),
        ("[1, 2]", "UserParameters must be a JSON object, not a list"),
        ("{}", "nothing to check: give at least one entry in 'checks' or 'alarms'"),
        ('{"check": []}', "unknown key(s) check; allowed: checks, alarms"),
        ('{"checks": {}}', "checks: must be a list of objects, not an object"),
        ('{"checks": ["https://a"]}', "checks[0]: must be an object, not a string"),
        ('{"checks": [{"url": "https://a.example"}]}', "checks[0].name: required"),
        ('{"checks": [{"name": "a", "url": "ftp://a.example"}]}',
         "checks[0] (a).url: required, an http:// or https:// URL with a host (got 'ftp://a.example')"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "method": "FETCH"}]}',
         "checks[0] (a).method: got 'FETCH'; allowed values: GET, HEAD"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "expect_status": 700}]}',
         "checks[0] (a).expect_status: 700 is not an HTTP status code (100-599)"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "expect_status": []}]}',
         "checks[0] (a).expect_status: give at least one status code"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "json": {"path": "status"}}]}',
         "checks[0] (a).json: must be an object with exactly 'path' and 'equals'"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "json": {"path": "a..b", "equals": 1}}]}',
         "checks[0] (a).json.path: must be a dotted path"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "max_latency_ms": "fast"}]}',
         "checks[0] (a).max_latency_ms: must be a whole number of milliseconds"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "headers": {"X": 1}}]}',
         "checks[0] (a).headers.X: must be a string or"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "headers": {"X": {"secret": "bad name!"}}}]}',
         "checks[0] (a).headers.X.secret: must be a Secrets Manager secret name"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "headers": {"Bad Header": "x"}}]}',
         "'Bad Header' is not a valid header name"),
        ('{"checks": [{"name": "a", "url": "https://a.example", "timeout": 3}]}',
         "checks[0] (a): unknown key(s) timeout"),
        ('{"checks": [{"name": "a", "url": "https://a.example"}, {"name": "a", "url": "https://b.example"}]}',
         "checks: duplicate name(s) a"),
        ('{"alarms": ["a"], "attempts": 0}', "attempts: must be a whole number from 1 to 10 (got 0)"),
        ('{"alarms": ["a"], "attempts": true}', "attempts: must be a whole number from 1 to 10 (got True)"),
        ('{"alarms": ["a"], "interval_seconds": -1}', "interval_seconds: must be a number from 0 to 300"),
        ('{"alarms": ["a"], "timeout_seconds": 0}', "timeout_seconds: must be a number from 0.1 to 60"),
        ('{"alarms": ["a"], "stabilize_seconds": 7200}', "stabilize_seconds: must be a whole number from 0 to 3600"),
        ('{"alarms": "a"}', "alarms: must be a list of alarm names, not a string"),
        ('{"alarms": [""]}', "alarms[0]: must be an alarm name"),
    ],
)
def test_malformed_configuration_names_the_problem(raw: str | None, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        spec.parse_config(raw)
    assert message in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        spec.parse_config({"checks": [{"name": "a", "url": "nope"}, {"url": "https://b.example"}], "attempts": 99})
    text = str(info.value)
    assert text.startswith("UserParameters: ")
    assert "attempts:" in text and "checks[0] (a).url" in text and "checks[1].name" in text


def test_source_names_the_origin() -> None:
    with pytest.raises(ConfigurationError, match=r"^CHECKS is not valid JSON"):
        spec.parse_config("{", source="CHECKS")


SPEC = CheckSpec(name="api", url="https://api.example/")


@pytest.mark.parametrize(
    ("spec", "response", "reason"),
    [
        (SPEC, HttpResponse(200, "", 5), None),
        (SPEC, HttpResponse(503, "", 5), "status 503, expected 200"),
        (CheckSpec("a", "https://a/", expect_status=(200, 204)), HttpResponse(500, "", 5),
         "status 500, expected 200 or 204"),
        (CheckSpec("a", "https://a/", max_latency_ms=100), HttpResponse(200, "", 250.4),
         "latency 250 ms over max_latency_ms 100"),
        (CheckSpec("a", "https://a/", body_contains="Welcome"), HttpResponse(200, "maintenance", 5),
         "body does not contain 'Welcome'"),
        (CheckSpec("a", "https://a/", json=JsonExpectation("status", "ok")), HttpResponse(200, "<html>", 5),
         "body is not JSON, so json path 'status' cannot be checked"),
        (CheckSpec("a", "https://a/", json=JsonExpectation("status", "ok")),
         HttpResponse(200, '{"status": "degraded"}', 5), "json path 'status' is \"degraded\", expected \"ok\""),
        (CheckSpec("a", "https://a/", json=JsonExpectation("db.state", "up")), HttpResponse(200, '{"status": 1}', 5),
         "json path 'db.state' not found"),
        (CheckSpec("a", "https://a/", json=JsonExpectation("items.1.ok", True)),
         HttpResponse(200, '{"items": [{"ok": false}, {"ok": true}]}', 5), None),
        (CheckSpec("a", "https://a/", json=JsonExpectation("count", 1)), HttpResponse(200, '{"count": true}', 5),
         "json path 'count' is true, expected 1"),
    ],
)
def test_evaluate(spec: CheckSpec, response: HttpResponse, reason: str | None) -> None:
    assert evaluate.evaluate(spec, response) == reason


def test_evaluate_alarm() -> None:
    assert evaluate.evaluate_alarm("a", "OK").passed
    assert evaluate.evaluate_alarm("a", "INSUFFICIENT_DATA").passed
    assert evaluate.evaluate_alarm("a", "ALARM") == AlarmResult("a", "ALARM", False, "alarm is in ALARM")
    assert evaluate.evaluate_alarm("a", None) == AlarmResult("a", None, False, "alarm not found")


def test_summarize_counts_and_names_failures() -> None:
    outcome = evaluate.summarize(
        [CheckResult("api", "https://api/", True, 200, 12.0, 1),
         CheckResult("web", "https://web/", False, 503, 8.0, 3, "status 503, expected 200")],
        [AlarmResult("api-5xx", "ALARM", False, "alarm is in ALARM")],
    )
    assert not outcome.passed
    assert (outcome.checks_passed, outcome.checks_failed) == (1, 2)
    assert outcome.output_variables == {"checks_passed": "1", "checks_failed": "2"}
    assert outcome.failure_message == (
        "2 of 3 check(s) failed: web (503, 8 ms, 3 attempt(s)): FAILED: status 503, expected 200; "
        "alarm api-5xx (ALARM): FAILED: alarm is in ALARM"
    )
    assert outcome.summary.startswith("1 of 3 check(s) passed, 2 failed: api (200, 12 ms, 1 attempt(s)): passed")


def test_summarize_all_passed_has_no_failure_message() -> None:
    outcome = evaluate.summarize([CheckResult("api", "https://api/", True, 200, 12.0, 1)])
    assert outcome.passed and outcome.failure_message == ""
    assert outcome.summary == "1 of 1 check(s) passed: api (200, 12 ms, 1 attempt(s)): passed"


def test_many_long_failures_stay_under_the_limits() -> None:
    results = [CheckResult(f"check-{i:02d}", "https://x/", False, None, None, 3, "connection failed: " + "x" * 600)
               for i in range(50)]
    outcome = evaluate.summarize(results)
    assert len(outcome.failure_message) <= 5000
    assert len(outcome.summary) <= 2048
    assert outcome.failure_message.startswith("50 of 50 check(s) failed: check-00")
    assert "more" in outcome.failure_message


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=120), st.booleans(), st.text(max_size=900)), max_size=60))
def test_messages_always_fit(items: list[tuple[str, bool, str]]) -> None:
    results = [CheckResult(name, "https://x/", passed, 200, 1.0, 1, reason) for name, passed, reason in items]
    outcome = evaluate.summarize(results)
    assert len(outcome.failure_message) <= spec.MAX_FAILURE_MESSAGE
    assert 0 < len(outcome.summary) <= spec.MAX_SUMMARY
    assert outcome.passed == all(passed for _, passed, _ in items)
    assert outcome.checks_passed + outcome.checks_failed == len(items)


def test_head_with_a_body_check_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"checks\[0\] \(h\): method HEAD gets no body, so body_contains "
                                                 r"and json cannot be checked; use GET"):
        spec.parse_config({"checks": [{"name": "h", "url": "https://a.example/", "method": "HEAD",
                                       "body_contains": "ok"}]})
    assert spec.parse_config({"checks": [{"name": "h", "url": "https://a.example/", "method": "HEAD"}]}).checks


def test_bake_settings_are_parsed_and_bounded() -> None:
    parsed = spec.parse_config({"alarms": ["a"], "bake_seconds": 600, "bake_interval_seconds": 30})
    assert (parsed.bake_seconds, parsed.bake_interval_seconds) == (600, 30)
    assert spec.parse_config({"alarms": ["a"]}).bake_interval_seconds == 60
    with pytest.raises(ConfigurationError, match=r"bake_seconds: must be a whole number from 0 to 3600 \(got 7200\)"):
        spec.parse_config({"alarms": ["a"], "bake_seconds": 7200})
    with pytest.raises(ConfigurationError, match="bake_interval_seconds: must be a whole number from 10 to 3600"):
        spec.parse_config({"alarms": ["a"], "bake_interval_seconds": 1})
