"""``own_role``: a function test's handler calls run under the function's synthesized role, moto IAM on.

Use it in a test module of ``tests/functions/<automation>/`` with
``pytestmark = pytest.mark.usefixtures("own_role")`` (the fixture is in tests/conftest.py): every call of
``<automation>.handler.handler`` (call it through the module, ``handler.handler(...)``) runs under the role
the stack synthesizes for the ``MODE`` the
test sets (``enforce`` unless it says ``report``), resolved against the test's environment. The test then
fails when moto's authorization refused a call or a call is not granted by the role. The role comes from
the automation's stack built in process (once per worker and mode) with the same settings as the
least-privilege proof (tests/iam/conftest.py ``PROOF_SETTINGS``), and those a test says its environment
stands for with ``@pytest.mark.own_role_settings(dest_bucket_name=...)``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import importlib
import json
import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any
from unittest import mock

import pytest
from aws_cdk.assertions import Template

from tests.iam.enforce import RECORDER, run_as
from tests.iam.roles import FunctionRole, function_role, main_function
from tests.stacks.helpers import build_with

ACCOUNT = "123456789012"


def proof_settings(automation: str, mode: str, extra: str = "{}") -> dict[str, Any]:
    from stacks.settings import Automations
    from tests.iam.conftest import PROOF_SETTINGS

    settings = {**copy.deepcopy(PROOF_SETTINGS.get(automation, {})), **json.loads(extra)}
    if "mode" in Automations.model_fields[automation].annotation.model_fields:  # type: ignore[union-attr]
        settings["mode"] = mode
    return settings


@lru_cache(maxsize=32)
def synthesized_role(automation: str, mode: str, extra: str = "{}") -> FunctionRole:
    assembly = build_with(automation, proof_settings(automation, mode, extra))
    template = Template.from_stack(assembly.stacks[automation]).to_json()
    return function_role(template, main_function(template, automation))


@contextlib.contextmanager
def under_own_role(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    automation = request.module.__name__.split(".")[2]  # tests.functions.<automation>.<module>
    module = importlib.import_module(f"{automation}.handler")
    original: Callable[..., Any] = module.handler
    findings: list[str] = []
    marker = request.node.get_closest_marker("own_role_settings")  # settings the test's environment stands for
    extra = json.dumps(marker.kwargs if marker else {}, sort_keys=True)

    def under_role(event: Any, context: Any) -> Any:
        mode = os.environ.get("MODE", "enforce")
        role = synthesized_role(automation, mode, extra)
        env = dict(os.environ)
        with run_as(role, env, region=env.get("AWS_REGION") or env["AWS_DEFAULT_REGION"], account=ACCOUNT,
                    mode=mode) as credentials, mock.patch.dict(os.environ, credentials):
            principal = RECORDER.principals[(f"{automation}/{role.function_id}", mode)]
            calls, refused = len(principal.calls), len(principal.refused)
            try:
                return original(event, context)
            finally:
                granted = [action for statement in principal.statements for action in statement.actions]
                findings.extend(f"refused under the {mode} role: {line}" for line in principal.refused[refused:])
                findings.extend(
                    f"called but not granted by the {mode} role: {call.action}"
                    for call in principal.calls[calls:]
                    if not any(fnmatch.fnmatchcase(call.action.lower(), g.lower()) for g in granted))

    monkeypatch.setattr(module, "handler", under_role)
    yield
    assert not findings, "\n".join(sorted(set(findings)))
