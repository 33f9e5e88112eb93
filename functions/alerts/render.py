"""One renderer per destination type: Slack Block Kit, a Teams Adaptive Card, generic JSON.

Pure: an :class:`~alerts.alert.Alert` in, the JSON body to POST out. Each renderer keeps its
destination's limits and marks what it cut with ``… (truncated)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from alerts.alert import Alert
from shared.text import TRUNCATED, truncate

# Slack Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
SLACK_MAX_BLOCKS = 50
SLACK_SECTION_CHARS = 3_000
SLACK_HEADER_CHARS = 150
SLACK_FIELD_CHARS = 2_000
SLACK_FIELDS_PER_SECTION = 10
SLACK_BUTTON_TEXT_CHARS = 75
SLACK_MAX_BUTTONS = 5
SLACK_TEXT_CHARS = 3_000
SLACK_EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "info": ":large_blue_circle:"}

# Teams: the Workflows webhook takes a message of up to about 28 KB; keep a margin. Cards are Adaptive
# Card 1.4 (what Teams renders on every client); properties of later versions are not used.
TEAMS_MAX_BYTES = 27_000
TEAMS_COLOR = {"critical": "Attention", "warning": "Warning", "info": "Accent"}
TEAMS_SUMMARY_CHARS = 8_000
TEAMS_DETAILS_CHARS = 6_000
TEAMS_MAX_ACTIONS = 5
TEAMS_TITLE_CHARS = 250
TEAMS_MAX_FACTS = 20
TEAMS_FACT_CHARS = 1_000

WEBHOOK_SUMMARY_CHARS = 40_000


def _slack_escape(text: str) -> str:
    """Slack mrkdwn control characters: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_BOLD = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def _slack_markdown(text: str, limit: int) -> str:
    """Markdown of action reports (``**bold**``, ``[text](url)``) as Slack mrkdwn, escaped and cut."""
    escaped = _slack_text(text, limit)
    escaped = _BOLD.sub(r"*\1*", escaped)
    return _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", escaped)


def _slack_text(text: str, limit: int) -> str:
    """Escape, then cut to ``limit`` without splitting an ``&amp;``-style entity."""
    escaped = _slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - len(TRUNCATED)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + TRUNCATED


def _context_line(alert: Alert) -> str:
    parts = [alert.severity.upper(), alert.source, alert.time, alert.resource, alert.origin]
    return " · ".join(part for part in parts if part)


def render_slack(alert: Alert) -> dict[str, Any]:
    """Incoming-webhook JSON: a ``text`` fallback (notifications, old clients) and Block Kit blocks."""
    emoji = SLACK_EMOJI[alert.severity]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(f"{emoji} {alert.title}", SLACK_HEADER_CHARS),
                "emoji": True,
            },
        }
    ]
    if alert.summary:
        summary = _slack_markdown(alert.summary, SLACK_SECTION_CHARS)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": summary}})
    for start in range(0, len(alert.fields), SLACK_FIELDS_PER_SECTION):
        chunk = alert.fields[start : start + SLACK_FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _slack_text(f"*{name}*\n{value}", SLACK_FIELD_CHARS)}
                    for name, value in chunk
                ],
            }
        )
    if alert.details:
        fence = "```"
        body = _slack_text(alert.details, SLACK_SECTION_CHARS - 2 * len(fence) - 2)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{fence}\n{body}\n{fence}"}})
    if alert.links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": truncate(link.title, SLACK_BUTTON_TEXT_CHARS)},
                        "url": link.url,
                    }
                    for link in alert.links[:SLACK_MAX_BUTTONS]
                ],
            }
        )
    context = _slack_text(_context_line(alert), SLACK_SECTION_CHARS)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    if len(blocks) > SLACK_MAX_BLOCKS:
        blocks = [*blocks[: SLACK_MAX_BLOCKS - 1], blocks[-1]]
    first_line = alert.summary.strip().splitlines()[0] if alert.summary.strip() else ""
    origin = f" ({alert.origin})" if alert.origin else ""
    text = f"{emoji} [{alert.severity.upper()}] {alert.title}{origin}" + (f": {first_line}" if first_line else "")
    return {"text": _slack_markdown(text, SLACK_TEXT_CHARS), "blocks": blocks, "unfurl_links": False}


def _teams_card(alert: Alert, summary_chars: int, details_chars: int, fact_chars: int) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate(alert.title, TEAMS_TITLE_CHARS),
            "size": "Large",
            "weight": "Bolder",
            "color": TEAMS_COLOR[alert.severity],
            "wrap": True,
        },
        {"type": "TextBlock", "text": _context_line(alert), "isSubtle": True, "spacing": "None", "wrap": True},
    ]
    if alert.summary and summary_chars > 0:
        body.append({"type": "TextBlock", "text": truncate(alert.summary, summary_chars), "wrap": True})
    if alert.fields:
        facts = [
            {"title": truncate(name, 100), "value": truncate(value, fact_chars)}
            for name, value in alert.fields[:TEAMS_MAX_FACTS]
        ]
        body.append({"type": "FactSet", "facts": facts})
    if alert.details and details_chars > 0:
        lines = truncate(alert.details, details_chars).splitlines()
        body.append(
            {
                "type": "Container",
                "style": "emphasis",
                "items": [
                    {"type": "TextBlock", "text": line or " ", "fontType": "Monospace", "size": "Small",
                     "wrap": True, "spacing": "None"}
                    for line in lines
                ],
            }
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    if alert.links:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": link.title, "url": link.url} for link in alert.links[:TEAMS_MAX_ACTIONS]
        ]
    return card


def wire_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed for ``payload``: compact UTF-8 JSON (non-ASCII not escaped, so a Cyrillic
    card is not 2.7x larger on the wire). Size limits are checked against these bytes."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _size(payload: dict[str, Any]) -> int:
    return len(wire_bytes(payload))


def render_teams(alert: Alert) -> dict[str, Any]:
    """A Teams Workflows webhook message with one Adaptive Card attachment, under 28 KB."""
    summary_chars, details_chars, fact_chars = TEAMS_SUMMARY_CHARS, TEAMS_DETAILS_CHARS, TEAMS_FACT_CHARS
    while True:
        message = {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": _teams_card(alert, summary_chars, details_chars, fact_chars),
                }
            ],
        }
        if _size(message) <= TEAMS_MAX_BYTES or fact_chars <= 20:
            return message
        # Shrink the log lines first, then the summary, then the facts.
        if details_chars > 0:
            details_chars = details_chars // 2 if details_chars > 200 else 0
        elif summary_chars > 0:
            summary_chars = summary_chars // 2 if summary_chars > 200 else 0
        else:
            fact_chars //= 2


def render_webhook(alert: Alert) -> dict[str, Any]:
    """The normalized alert as JSON, for any HTTP endpoint."""
    data = alert.to_dict()
    data["summary"] = truncate(alert.summary, WEBHOOK_SUMMARY_CHARS)
    return data


RENDERERS: dict[str, Callable[[Alert], dict[str, Any]]] = {
    "slack": render_slack,
    "teams": render_teams,
    "webhook": render_webhook,
    "slack-app": render_slack,
}


def render(destination_type: str, alert: Alert) -> dict[str, Any]:
    return RENDERERS[destination_type](alert)
