"""The settings tables in docs/ are generated from the settings models and must agree with them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from stacks.settings import AUTOMATION_NAMES, docs


def test_docs_agree_with_the_models() -> None:
    assert docs.outdated() == [], "docs/ disagree with stacks/settings: run `make docs` and commit the result"


def test_every_automation_and_the_project_have_a_page() -> None:
    assert sorted(docs.sections()) == sorted([*AUTOMATION_NAMES, "settings"])
    for name in docs.sections():
        assert (docs.DOCS_DIR / f"{name}.md").exists()


class _Inner(BaseModel):
    size: int = Field(3, ge=1, le=9, description="A size.")


class _Outer(BaseModel):
    mode: Literal["a", "b"] = Field("a", description="The mode | with a pipe.")
    inner: _Inner = Field(default_factory=_Inner, description="One inner.")
    items: list[_Inner] = Field(default_factory=list, description="Inner items.")
    named: dict[str, _Inner] = Field(default_factory=dict, description="Named inners.")
    needed: str = Field(description="Must be given.")


def test_rows_cover_nested_models_with_types_bounds_and_defaults() -> None:
    rows = {row.key: row for row in docs.rows(_Outer)}
    assert list(rows) == ["mode", "inner", "inner.size", "items", "items[].size", "named", "named.<name>.size",
                          "needed"]
    assert rows["mode"].type == 'one of "a", "b"'
    assert rows["mode"].default == '"a"'
    assert rows["inner.size"].type == "integer (≥ 1, ≤ 9)"
    assert rows["inner.size"].default == "3"
    assert rows["items"].default == "[]"
    assert rows["needed"].default == "required"
    table = docs.table(_Outer)
    assert "The mode \\| with a pipe." in table
    assert "| `needed` | string | required | Must be given. |" in table


def test_a_field_without_description_fails_with_its_path() -> None:
    class Leaf(BaseModel):
        limit: int = 1

    class Root(BaseModel):
        leaves: list[Leaf] = Field(default_factory=list, description="Leaves.")

    with pytest.raises(docs.DocsError, match=r"automations\.x\.leaves\[\]\.limit: the field has no description"):
        docs.rows(Root, path="automations.x")


def test_render_replaces_only_between_the_markers(tmp_path: Path) -> None:
    page = f"# t\n\nbefore\n\n{docs.BEGIN}\nold table\n{docs.END}\n\nafter\n"
    assert docs.render(page, "NEW") == f"# t\n\nbefore\n\n{docs.BEGIN}\nNEW\n{docs.END}\n\nafter\n"
    with pytest.raises(docs.DocsError, match="needs one"):
        docs.render("# no markers\n", "NEW")


def test_write_then_check_round_trip(tmp_path: Path) -> None:
    for name in docs.sections():
        (tmp_path / f"{name}.md").write_text(f"# {name}\n\n{docs.BEGIN}\nstale\n{docs.END}\n")
    assert len(docs.outdated(tmp_path)) == len(docs.sections())
    assert len(docs.write(tmp_path)) == len(docs.sections())
    assert docs.outdated(tmp_path) == []
    assert "`event_rules.health`" in (tmp_path / "alerts.md").read_text()
    assert "`schedules.<name>.periods[].days`" in (tmp_path / "ec2_scheduler.md").read_text()
