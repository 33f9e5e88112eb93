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


@pytest.fixture(scope="session")
def cdk_outs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """mode -> cloud assembly: every automation with modes on ``enforce``; those with a mode on ``report``."""
    enforce = synthesize(tmp_path_factory.mktemp("cdk.out.enforce"), mode_context("enforce"), "all")
    report_context = mode_context("report")
    report = synthesize(tmp_path_factory.mktemp("cdk.out.report"), report_context,
                        ",".join(moded_automations(report_context)))
    return {"enforce": enforce, "report": report}
