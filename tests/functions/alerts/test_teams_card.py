"""The Teams card: the properties it uses exist in the Adaptive Card version it declares, and the size
limit holds for the bytes actually sent on the wire."""

from __future__ import annotations

from typing import Any

import requests

from alerts import delivery
from alerts.alert import Alert, Link
from alerts.formatters import Options, alerts_from_event
from alerts.render import TEAMS_MAX_BYTES, render_teams
from tests.functions.alerts.conftest import EVENT_NAMES, Receiver, load

# Properties per element type and the Adaptive Card schema version that introduced each
# (adaptivecards.io/explorer); "msteams" is Teams' own extension of the card.
SINCE: dict[str, dict[str, str]] = {
    "AdaptiveCard": {"type": "1.0", "version": "1.0", "body": "1.0", "actions": "1.0", "$schema": "1.0",
                     "msteams": "1.0", "fallbackText": "1.0", "speak": "1.0", "lang": "1.0",
                     "minHeight": "1.2", "rtl": "1.5"},
    "TextBlock": {"type": "1.0", "text": "1.0", "color": "1.0", "fontType": "1.2", "isSubtle": "1.0",
                  "maxLines": "1.0", "size": "1.0", "weight": "1.0", "wrap": "1.0", "spacing": "1.0",
                  "separator": "1.0", "horizontalAlignment": "1.0", "style": "1.5"},
    "FactSet": {"type": "1.0", "facts": "1.0", "spacing": "1.0", "separator": "1.0"},
    "Container": {"type": "1.0", "items": "1.0", "style": "1.0", "spacing": "1.0", "bleed": "1.2",
                  "separator": "1.0", "rtl": "1.5"},
    "Action.OpenUrl": {"type": "1.0", "title": "1.0", "url": "1.0", "iconUrl": "1.1", "style": "1.2",
                       "tooltip": "1.5", "isEnabled": "1.5", "mode": "1.5"},
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _elements(card: dict[str, Any]) -> list[dict[str, Any]]:
    found = [card]
    stack = [*card.get("body", []), *card.get("actions", [])]
    while stack:
        element = stack.pop()
        found.append(element)
        stack.extend(element.get("items", []))
    return found


def _too_new(card: dict[str, Any]) -> list[str]:
    declared = _version(card["version"])
    problems = []
    for element in _elements(card):
        table = SINCE[element["type"]]
        for name in element:
            if name not in table:
                problems.append(f"{element['type']}.{name}: not in the schema table")
            elif _version(table[name]) > declared:
                problems.append(f"{element['type']}.{name} needs {table[name]}, card declares {card['version']}")
    return problems


def test_every_property_exists_in_the_declared_card_version() -> None:
    problems = {}
    for name in EVENT_NAMES:
        for alert in alerts_from_event(load(name), Options()):
            card = render_teams(alert)["attachments"][0]["content"]
            found = _too_new(card)
            if found:
                problems[name] = found
    assert problems == {}


CYRILLIC = "Превышен порог загрузки процессора на узле базы данных. "


def _cyrillic_alert() -> Alert:
    return Alert(
        title="Тревога: " + CYRILLIC[:60],
        severity="critical",
        summary=CYRILLIC * 200,
        source="cloudwatch-alarm",
        fields=tuple((f"Поле {i}", CYRILLIC * 4) for i in range(12)),
        links=(Link("Открыть в консоли", "https://example.com/alarm"),),
        details="\n".join(f"2026-11-28T08:00:{i % 60:02d}Z ОШИБКА {CYRILLIC}" for i in range(120)),
    )


def test_teams_size_limit_holds_for_the_bytes_on_the_wire(receiver: Receiver) -> None:
    message = render_teams(_cyrillic_alert())
    destination = delivery.Destination(type="teams", url=receiver.url + "/teams/cyrillic")
    with requests.Session() as session:
        result = delivery.post(session, destination, message, delivery.Policy(sleep=lambda _: None))
    assert result.ok
    (received,) = receiver.received
    sent = int(received.headers["Content-Length"])
    assert sent <= TEAMS_MAX_BYTES
    assert received.body == message  # the same card, whatever the encoding on the wire
    assert received.headers["Content-Type"] == "application/json; charset=utf-8"
