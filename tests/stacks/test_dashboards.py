"""Dashboards: one per automation stack with its functions, queues, alarms and every metric its code emits."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from stacks.assembly import Assembly, build
from stacks.dashboards import METRICS
from stacks.settings import AUTOMATION_NAMES
from tests.stacks.helpers import TEST_ENV, build_with, template

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
METRIC_CALLS = {"add_metric", "single_metric"}


@pytest.fixture(scope="module")
def app() -> Assembly:
    return build({"project": {}, "automations": {name: {"enabled": True} for name in AUTOMATION_NAMES}}, env=TEST_ENV)


def _body(resources: dict[str, Any]) -> str:
    (dashboard,) = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    return json.dumps(dashboard["Properties"]["DashboardBody"])


@pytest.mark.parametrize("automation", AUTOMATION_NAMES)
def test_each_automation_has_a_dashboard_of_its_functions_queues_alarms_and_metrics(
        app: Assembly, automation: str) -> None:
    resources = template(app.stacks[automation]).to_json()["Resources"]
    body = _body(resources)
    for logical, res in resources.items():
        if res["Type"] == "AWS::Lambda::Function" and "POWERTOOLS_SERVICE_NAME" in json.dumps(res):
            assert logical in body  # its metrics are graphed by FunctionName = Ref
        if res["Type"] == "AWS::SQS::Queue":
            assert logical in body, f"queue {logical} not on the dashboard"
        if res["Type"] == "AWS::CloudWatch::Alarm":
            assert logical in body, f"alarm {logical} not on the dashboard"
    for metric in ("Invocations", "Errors", "Duration", "Throttles"):
        assert metric in body
    for name in emitted_metrics(automation):
        assert name in body, f"{automation} emits {name} but its dashboard does not show it"


def test_the_overview_lives_in_the_core_stack_without_references_to_automation_stacks(app: Assembly) -> None:
    resources = template(app.core).to_json()["Resources"]
    body = _body(resources)
    assert "AWS/Lambda" in body and "AWS/SQS" in body and "FunctionName=opsauto" in body
    assert "Fn::ImportValue" not in body


def test_dashboards_can_be_switched_off() -> None:
    assembly = build_with("alerts", project={"dashboards": False})
    for stack in (assembly.core, assembly.stacks["alerts"]):
        assert not template(stack).find_resources("AWS::CloudWatch::Dashboard")


@pytest.mark.parametrize("automation", AUTOMATION_NAMES)
def test_declared_metrics_are_exactly_what_the_code_emits(automation: str) -> None:
    declared = {name for names in METRICS[automation].values() for name in names}
    assert emitted_metrics(automation) == declared


def emitted_metrics(automation: str) -> set[str]:
    """Literal metric names passed to Powertools (add_metric, single_metric) or to a package's own wrapper
    of them (a function whose first parameter is the name it passes on), in the automation's code."""
    names: set[str] = set()
    for path in sorted((FUNCTIONS / automation).rglob("*.py")):
        tree = ast.parse(path.read_text())
        wrappers = _wrappers(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee(node) in METRIC_CALLS | wrappers:
                name = _name_argument(node)
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    names.add(name.value)
                elif _callee(node) in wrappers or not _inside_wrapper(tree, node, wrappers):
                    raise AssertionError(f"{path}:{node.lineno}: metric name is not a literal; the dashboard "
                                         "test cannot see it")
    return names


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _name_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "name":
            return keyword.value
    return call.args[0] if call.args else None


def _wrappers(tree: ast.Module) -> set[str]:
    found = set()
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        params = [a.arg for a in fn.args.args]
        if not params:
            continue
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call) and _callee(n) in METRIC_CALLS):
            arg = _name_argument(call)
            if isinstance(arg, ast.Name) and arg.id == params[0]:
                found.add(fn.name)
    return found


def _inside_wrapper(tree: ast.Module, target: ast.Call, wrappers: set[str]) -> bool:
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in wrappers):
        if any(node is target for node in ast.walk(fn)):
            return True
    return False
