"""The synthesized apps the least-privilege proof runs against: once per session, each mode."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from stacks.assembly import build

ROOT = Path(__file__).resolve().parents[2]


# Settings the scenarios need in the synthesized app, so the role holds what they exercise: key_rotation's
# rotation grants exist only for managed users (the demo rotates ci-deployer's key).
PROOF_SETTINGS: dict[str, dict[str, Any]] = {
    "key_rotation": {"managed_users": [{"user_name": "ci-deployer"}]},
    # the function tests' default (image_resize/conftest.py): renditions follow their source's deletion
    "image_resize": {"delete_renditions": True},
}


def mode_context(mode: str) -> dict[str, Any]:
    """cdk.json's context with every automation that has a ``mode`` set to ``mode`` (and PROOF_SETTINGS)."""
    context: dict[str, Any] = copy.deepcopy(json.loads((ROOT / "cdk.json").read_text())["context"])
    for name, section in context["automations"].items():
        section.update(copy.deepcopy(PROOF_SETTINGS.get(name, {})))
        if "mode" in section:
            section["mode"] = mode
    return context


def moded_automations(context: dict[str, Any]) -> list[str]:
    return [name for name, section in context["automations"].items() if "mode" in section]


def synthesize(outdir: Path, context: dict[str, Any], enable: str) -> Path:
    app = App(outdir=str(outdir), context={"aws:cdk:enable-asset-metadata": True})
    build(context, enable, app=app, nag=False)
    app.synth()
    return outdir


# The Organization the cross-account scenarios run in (their regions; any OU id: targets come from the
# function's environment, which the scenario sets).
ORGANIZATION = {"enabled": True, "organizational_units": ["ou-ab12-cd34ef56"], "regions": ["eu-central-1", "eu-west-1"]}


def cross_scenarios() -> dict[str, tuple[str, ...]]:
    """Scenario name -> the automations it uses (demo/__main__.py CROSS_SCENARIOS and their USES)."""
    import importlib

    from demo.__main__ import CROSS_SCENARIOS, available

    return {name: tuple(importlib.import_module(f"demo.scenarios.{name}").USES)
            for name in CROSS_SCENARIOS if name in available()}


@pytest.fixture(scope="session")
def cdk_outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Which cloud assembly a run's role comes from: ``enforce`` (every automation, modes on enforce),
    ``report`` (those with a mode, on report), and ``<scenario>:enforce`` for a cross-account scenario (its
    automations with ``project.organization`` enabled: the hub roles reach member roles, and the member
    template is synthesized)."""
    enforce = synthesize(tmp_path_factory.mktemp("cdk.out.enforce"), mode_context("enforce"), "all")
    report_context = mode_context("report")
    report = synthesize(tmp_path_factory.mktemp("cdk.out.report"), report_context,
                        ",".join(moded_automations(report_context)))
    outs = {"enforce": enforce, "report": report}
    for scenario, uses in cross_scenarios().items():
        context = mode_context("enforce")
        context["project"] = {**context.get("project", {}), "organization": copy.deepcopy(ORGANIZATION)}
        outs[f"{scenario}:enforce"] = synthesize(tmp_path_factory.mktemp(f"cdk.out.{scenario}"), context,
                                                 ",".join(uses))
    return outs
