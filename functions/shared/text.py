"""Text helpers shared by the functions."""

from __future__ import annotations

TRUNCATED = "… (truncated)"


def truncate(text: str, limit: int, marker: str = TRUNCATED) -> str:
    """``text`` cut to at most ``limit`` characters, ending with ``marker`` when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(marker):
        return text[:limit]
    return text[: limit - len(marker)] + marker
