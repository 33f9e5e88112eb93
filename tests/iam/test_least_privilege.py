"""Least privilege, proven: every demo scenario runs each function under its own synthesized role with moto's
IAM authorization on, and what each function called is compared with what its role grants.

The scenarios are those of `make demo` (so it cannot rot): the function code from the synthesized asset,
its environment from the template. Invocations with ``MODE=report`` run under the role synthesized with
``mode: report`` (read-only), the others under the ``mode: enforce`` role. See tests/iam/enforce.py for what
moto evaluates, and docs/security.md for the tables (`make grants` rewrites them).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from demo.__main__ import Outcome, available, run_scenario, table
from demo.harness import read_functions
from tests.iam.enforce import RECORDER, RoleRunner
from tests.iam.grants import Proof, all_findings, current_section, prove, render, replace_section, stale_reasons

ROOT = Path(__file__).resolve().parents[2]
SECURITY_DOC = ROOT / "docs" / "security.md"

pytestmark = pytest.mark.synth


@dataclass
class Runs:
    outcomes: dict[str, Outcome]
    proofs: dict[tuple[str, str], Proof]


@pytest.fixture(scope="module")
def runs(cdk_outs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Runs:
    RECORDER.reset()  # handler tests run under own_role earlier in this process recorded their own calls
    runner = RoleRunner(cdk_outs)
    out = tmp_path_factory.mktemp("demo-output")
    outcomes = {name: run_scenario(name, cdk_outs["enforce"], out, verbose=False, around_invoke=runner)
                for name in available()}
    proofs = {key: prove(principal) for key, principal in RECORDER.principals.items()}
    RECORDER.reset()
    return Runs(outcomes, proofs)


def test_every_automation_has_a_synthesized_function(cdk_outs: dict[str, Path]) -> None:
    functions = read_functions(cdk_outs["enforce"])
    for scenario in available():
        for name in getattr(importlib.import_module(f"demo.scenarios.{scenario}"), "USES", [scenario]):
            assert name in functions, f"{name} has a demo scenario but no synthesized function"
            for spec in functions[name]:
                assert (spec.asset_dir / "handler.py").exists()
                assert (spec.asset_dir / name / "handler.py").exists()
                assert (spec.asset_dir / "shared" / "reports.py").exists()


@pytest.mark.parametrize("automation", available())
def test_scenario_under_its_role(automation: str, runs: Runs) -> None:
    outcome = runs.outcomes[automation]
    assert outcome.ok, outcome.summary
    assert automation in table([outcome])
    uses = getattr(importlib.import_module(f"demo.scenarios.{automation}"), "USES", [automation])
    for name in uses:
        assert any(label.startswith(f"{name}/") and any(row.called for row in proof.rows)
                   for (label, _), proof in runs.proofs.items()), f"{name} made no call under a role"


def test_both_modes_ran_under_their_roles(runs: Runs) -> None:
    """Each automation with a mode ran under its report-mode role too."""
    modes: dict[str, set[str]] = {}
    for label, mode in runs.proofs:
        modes.setdefault(label.split("/", 1)[0], set()).add(mode)
    for automation in ("ec2_scheduler", "sg_remediation", "key_rotation"):
        assert "report" in modes.get(automation, set()), f"{automation} never ran under its report-mode role"
    assert {"enforce", "report"} <= modes["ec2_scheduler"]
    assert {"enforce", "report"} <= modes["sg_remediation"]


def test_member_roles_ran_under_the_member_template(runs: Runs) -> None:
    """The cross-account scenario's member roles hold the member template's policies and were used."""
    members = {label for label, _ in runs.proofs if label.startswith("member/")}
    assert members, "no member role was used under the member template"
    for label in members:
        assert any(proof.rows and any(row.called for row in proof.rows)
                   for (name, _), proof in runs.proofs.items() if name == label), f"{label} called nothing"


def test_every_call_granted_and_every_grant_called_or_explained(runs: Runs) -> None:
    findings = all_findings(runs.proofs) + [f"stale reason in tests/iam/kept.py: {line}"
                                            for line in stale_reasons(runs.proofs.values())]
    assert not findings, "\n".join(findings)


def test_grant_tables_in_the_docs_are_current(runs: Runs) -> None:
    section = render(runs.proofs.values())
    text = SECURITY_DOC.read_text()
    if os.environ.get("GRANTS_WRITE") == "1":
        SECURITY_DOC.write_text(replace_section(text, section))
        text = SECURITY_DOC.read_text()
    assert current_section(text) == section, "docs/security.md's grant tables are out of date: run `make grants`"
