"""The settings tables of the docs, generated from the settings models.

Every field's row comes from the model: its key path, type (with its bounds), default and ``description=``.
A nested model's fields get rows of their own (``parent.child``; ``parent[].child`` in a list;
``parent.<name>.child`` in a map). A field without a description is an error naming its path.

Each automation's table goes into ``docs/<automation>.md`` and the project-wide settings into
``docs/settings.md``, between the markers ``<!-- settings:begin -->`` and ``<!-- settings:end -->``.

    python -m stacks.settings.docs            # print every table
    python -m stacks.settings.docs --write    # rewrite the tables in docs/ (make docs)
    python -m stacks.settings.docs --check    # exit 1 when docs/ disagrees with the models
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from stacks.settings import AUTOMATION_NAMES, ProjectSettings
from stacks.settings.base import AutomationSettings

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
PROJECT_DOC = "settings"
REQUIRED = "required"


class DocsError(Exception):
    """A settings model cannot be documented (a field without description), or a page lacks the markers."""


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def automation_models() -> dict[str, type[AutomationSettings]]:
    """Each automation's settings model, by automation name."""
    automations = ProjectSettings.model_fields["automations"].annotation
    assert isinstance(automations, type) and issubclass(automations, BaseModel)
    models: dict[str, type[AutomationSettings]] = {}
    for name in AUTOMATION_NAMES:
        model = automations.model_fields[name].annotation
        assert isinstance(model, type) and issubclass(model, AutomationSettings)
        models[name] = model
    return models


def rows(model: type[BaseModel], prefix: str = "", path: str = "", skip: tuple[str, ...] = ()) -> list[Row]:
    """The rows of ``model``'s fields (keys shown under ``prefix``; errors name ``path``)."""
    found: list[Row] = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        key = f"{prefix}{name}"
        where = f"{path}.{name}" if path else name
        if not field.description:
            raise DocsError(f"{where}: the field has no description= (the docs' settings table needs one)")
        nested = _nested(field.annotation)
        default = _default(field)
        if nested is not None:
            model_type, marker = nested
            found.append(Row(key, _type_name(field.annotation), default if marker else "", _text(field.description)))
            found.extend(rows(model_type, f"{key}{marker}.", f"{where}{marker}"))
        else:
            found.append(Row(key, _type_name(field.annotation) + _bounds(field), default, _text(field.description)))
    return found


def table(model: type[BaseModel], skip: tuple[str, ...] = (), path: str = "") -> str:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for row in rows(model, path=path, skip=skip):
        default = f"`{_cell(row.default)}`" if row.default and row.default != REQUIRED else row.default
        lines.append(f"| `{row.key}` | {_cell(row.type)} | {default} | {_cell(row.description)} |")
    return "\n".join(lines)


def sections() -> dict[str, str]:
    """The generated block of every page, by page name (docs/<name>.md)."""
    blocks: dict[str, str] = {}
    for name, model in automation_models().items():
        blocks[name] = _block(
            f"`cdk.json` → `context.automations.{name}` (model: `stacks/settings/{name}.py`, "
            f"`{model.__name__}`). `-c enable={name}` sets `enabled` without editing the file.",
            table(model, path=f"automations.{name}"),
        )
    blocks[PROJECT_DOC] = _block(
        "`cdk.json` → `context.project` (model: `stacks/settings/__init__.py`, `ProjectSettings`). "
        "Each automation's own settings (`context.automations.<name>`) are on its page.",
        table(ProjectSettings, skip=("automations",)),
    )
    return blocks


def render(page: str, block: str) -> str:
    """``page`` with the text between the markers replaced by ``block``."""
    if page.count(BEGIN) != 1 or page.count(END) != 1 or page.index(BEGIN) > page.index(END):
        raise DocsError(f"the page needs one {BEGIN} followed by one {END}")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def outdated(docs_dir: Path = DOCS_DIR) -> list[str]:
    """The pages whose settings table is not what the models give."""
    stale = []
    for name, block in sections().items():
        path = docs_dir / f"{name}.md"
        text = path.read_text() if path.exists() else ""
        try:
            if render(text, block) != text:
                stale.append(str(path))
        except DocsError as exc:
            stale.append(f"{path}: {exc}")
    return stale


def write(docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Rewrite every page's table; returns the pages that changed."""
    changed = []
    for name, block in sections().items():
        path = docs_dir / f"{name}.md"
        try:
            text = path.read_text()
            new = render(text, block)
        except (OSError, DocsError) as exc:
            raise DocsError(f"{path}: {exc}") from None
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def _block(intro: str, body: str) -> str:
    return (
        "<!-- generated by `make docs` (python -m stacks.settings.docs --write) from the settings models; "
        "edit the field descriptions there, not this table -->\n\n"
        f"{intro}\n\n{body}"
    )


def _nested(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model inside a field (itself, a list item or a map value) and the marker its rows carry."""
    for candidate in _without_none(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate, ""
        origin, args = get_origin(candidate), get_args(candidate)
        if origin is list and args and _is_model(args[0]):
            return args[0], "[]"
        if origin is dict and len(args) == 2 and _is_model(args[1]):
            return args[1], ".<name>"
    return None


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _without_none(annotation: Any) -> Iterator[Any]:
    if get_origin(annotation) in (Union, types.UnionType):
        yield from (arg for arg in get_args(annotation) if arg is not type(None))
    else:
        yield annotation


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is Annotated:  # a type with its validators: documented as the type
        return _type_name(args[0])
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}" if args else "object"
    if _is_model(annotation):
        return "object"
    if annotation is Any:
        return "any"
    names = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
    name = getattr(annotation, "__name__", str(annotation))
    return names.get(name, name)


def _bounds(field: FieldInfo) -> str:
    low = high = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = f"{'>' if isinstance(item, annotated_types.Gt) else '≥'} {_number(item)}"
        if isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = f"{'<' if isinstance(item, annotated_types.Lt) else '≤'} {_number(item)}"
    parts = [part for part in (low, high) if part]
    return f" ({', '.join(parts)})" if parts else ""


def _number(item: Any) -> Any:
    for attribute in ("ge", "gt", "le", "lt"):
        if hasattr(item, attribute):
            return getattr(item, attribute)
    return item


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return REQUIRED
    value = field.get_default(call_default_factory=True, validated_data={})
    adapter: TypeAdapter[Any] = TypeAdapter(Any if field.annotation is None else field.annotation)
    dumped = adapter.dump_python(value, mode="json")
    return json.dumps(dumped, ensure_ascii=False)


def _text(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str]) -> int:
    try:
        if "--write" in argv:
            changed = write()
            print("\n".join(f"wrote {path}" for path in changed) or "docs/ settings tables are up to date")
            return 0
        if "--check" in argv:
            stale = outdated()
            for line in stale:
                print(f"outdated: {line} (run make docs)", file=sys.stderr)
            return 1 if stale else 0
        for name, block in sections().items():
            print(f"## docs/{name}.md\n\n{block}\n")
        return 0
    except DocsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
