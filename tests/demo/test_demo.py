"""The demo's summary table. The scenarios themselves run in tests/iam/test_least_privilege.py, each
function under its own synthesized role, so `make demo` cannot rot."""

from __future__ import annotations

from demo.__main__ import Outcome, available, table


def test_table_lists_every_outcome() -> None:
    outcomes = [Outcome(name, f"{name} scenario", True, "done", 1.0) for name in available()]
    rendered = table(outcomes)
    for name in available():
        assert name in rendered
    assert "ok: done" in rendered
