"""The action report of an invocation: one summary of every object resized, deleted or rejected.

A bulk upload of 500 images through the queue trigger is about 100 invocations, so about 100 reports,
not 500. Warning severity when a file was rejected (someone should look at it), info otherwise.
Objects skipped (already up to date) or ignored are not reported: they are logged and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.reports import ActionReport

if TYPE_CHECKING:
    from image_resize.runner import Outcome

AUTOMATION = "image_resize"
REPORTED = ("written", "deleted", "rejected")
EVENT_TYPES = {"written": "ImageResized", "deleted": "RenditionsDeleted", "rejected": "ImageRejected"}
SUPPORTED = "JPEG, PNG, GIF, WebP, TIFF or AVIF"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _title(by_status: dict[str, list[Outcome]]) -> str:
    written, deleted, rejected = (by_status.get(s, []) for s in REPORTED)
    if sum(map(len, (written, deleted, rejected))) == 1:
        (only,) = written or deleted or rejected
        return {"written": f"Resized {only.key}", "deleted": f"Deleted the renditions of {only.key}",
                "rejected": f"Rejected {only.key}"}[only.status]
    parts = []
    if written:
        parts.append(f"Resized {_plural(len(written), 'image')}")
    if deleted:
        parts.append(f"deleted the renditions of {_plural(len(deleted), 'image')}")
    if rejected:
        parts.append(f"rejected {len(rejected)}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def _lines(outcome: Outcome) -> list[str]:
    if outcome.status == "written":
        return [f"- resized `{outcome.key}`: "
                + ", ".join(f"`{w.key}` {w.width}x{w.height} ({w.size} bytes)" for w in outcome.written)]
    if outcome.status == "deleted":
        return [f"- `{outcome.key}` was deleted, so were " + ", ".join(f"`{k}`" for k in outcome.deleted)]
    line = f"- rejected `{outcome.key}`: {outcome.reason}. It will not be retried."
    if outcome.deleted:
        line += " The renditions of the version it replaced were deleted: " + ", ".join(
            f"`{k}`" for k in outcome.deleted)
    return [line]


def build_report(outcomes: Sequence[Outcome], *, dest_bucket: str) -> ActionReport | None:
    """The invocation's summary; None when nothing was resized, deleted or rejected."""
    reported = [o for o in outcomes if o.status in REPORTED]
    if not reported:
        return None
    by_status: dict[str, list[Outcome]] = {}
    for outcome in reported:
        by_status.setdefault(outcome.status, []).append(outcome)
    rejected = by_status.get("rejected", [])
    kinds = set(by_status)
    event_type = EVENT_TYPES[next(iter(kinds))] if len(kinds) == 1 else "ImagesProcessed"
    resources: list[str] = []
    for outcome in reported:
        resources.append(f"arn:aws:s3:::{outcome.bucket}/{outcome.key}")
    for outcome in reported:
        resources += [f"arn:aws:s3:::{dest_bucket}/{w.key}" for w in outcome.written]
    description = [line for outcome in reported for line in _lines(outcome)]
    counts = {status: len(items) for status, items in by_status.items()}
    return ActionReport(
        automation=AUTOMATION,
        mode="enforce",
        title=_title(by_status),
        description="\n".join(description),
        event_type=event_type,
        severity="warning" if rejected else "info",
        summary="; ".join(f"{_plural(n, 'image')} {status}" for status, n in counts.items()),
        next_steps=[f"Check the rejected file(s); upload a valid {SUPPORTED} image within MAX_BYTES and MAX_PIXELS "
                    "to the same key to try again."] if rejected else [],
        keywords=["s3", "image", *(["rejected"] if rejected else [])],
        related_resources=resources,
        context={"counts": counts, **({"reasons": {o.key: o.reason for o in rejected}} if rejected else {})},
    )
