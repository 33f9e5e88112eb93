"""No setting is parsed in two places: the settings models hold no parsing rule of their own for a value the
functions read. A rule (a regular expression or a ``pattern=``) in stacks/settings is allowed only for a
setting that never reaches a function (the stack alone uses it), listed here with the reason. Every other
rule lives in the function's package (or functions/shared) and the model calls it."""

from __future__ import annotations

import ast
from pathlib import Path

SETTINGS = Path(__file__).resolve().parents[2] / "stacks" / "settings"

# (file, the rule's name or the field it constrains) -> why only the stack reads the value.
STACK_ONLY = {
    ("__init__.py", "prefix"): "the project's resource-name prefix: names stacks and resources, read by no function",
    ("alerts.py", "_LOG_GROUP_RE"): "log groups the stack subscribes to the function; the function gets their events",
    ("alerts.py", "_SNS_ARN_RE"): "topics the stack subscribes the function to; the function never reads them",
    ("key_rotation.py", "_SCHEDULE"): "the sweep's EventBridge schedule expression, a rule of the stack",
}


def _rules(path: Path) -> set[tuple[str, str]]:
    """Every ``NAME = re.compile(...)`` and every ``field = Field(..., pattern=...)`` of one settings module."""
    found: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = target.id if isinstance(target, ast.Name) else ast.unparse(target)
            call = node.value
            compiles = isinstance(call.func, ast.Attribute) and call.func.attr == "compile"
            patterned = any(keyword.arg == "pattern" for keyword in call.keywords)
            if compiles or patterned:
                found.add((path.name, name))
    return found


def test_settings_models_parse_only_what_no_function_reads() -> None:
    rules = set().union(*(_rules(path) for path in sorted(SETTINGS.glob("*.py"))))
    unexplained = sorted(rules - set(STACK_ONLY))
    assert not unexplained, (
        f"parsing rules in stacks/settings for values a function may read: {unexplained}; move each to the "
        "function's package (or functions/shared) and call it from the model, or list it in STACK_ONLY with why")
    assert sorted(set(STACK_ONLY) - rules) == [], "STACK_ONLY lists rules that are gone"
