"""The function's settings: one pure parser per setting, and ``Config.from_env``.

The settings model (stacks/settings/image_resize.py) validates cdk.json through these same parsers at
synth time and writes the environment ``Config.from_env`` reads; every variable is required here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from image_resize.planning import RenditionSpec
from shared.config import env_bool, env_int, env_json, env_present, env_str
from shared.config import parsed as _parsed

OUTPUT_FORMATS = ("original", "jpeg", "webp", "png", "avif")
METADATA = ("strip", "copyright")
FITS = ("contain", "cover")
MAX_SIDE = 16_384
# The largest side each encoder writes; 'original' never makes a rendition larger than its source.
FORMAT_MAX_SIDE = {"webp": 16_383, "jpeg": 65_500, "png": 2**31 - 1, "avif": 65_536, "gif": 65_535}
QUALITY_RANGE = (1, 100)
# S3 bucket naming rules (general purpose buckets): 3-63 characters, lowercase letters, digits, '.', '-'.
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


# ----------------------------------------------------------------------------------------- parsers


def parse_bucket_name(value: str) -> str:
    """An S3 general purpose bucket name: 3-63 lowercase letters, digits, '.' and '-', no '..'."""
    if not _BUCKET_RE.fullmatch(value) or ".." in value:
        raise ValueError(f"{value!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
    return value


def parse_rendition_name(value: Any) -> str:
    """One path segment of the rendition keys."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"rendition name {value!r} must be 1-63 characters of letters, digits, '_', '-', '.', "
            "start with a letter or digit, and not contain '..'"
        )
    return value


def parse_side(value: Any) -> int:
    """A box side in pixels."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
        raise ValueError(f"must be a whole number of pixels from 1 to {MAX_SIDE} (got {value!r})")
    return value


def parse_fit(value: Any) -> str:
    if value not in FITS:
        raise ValueError(f"fit {value!r} must be one of {', '.join(FITS)}")
    return str(value)


def parse_renditions(raw: Any) -> tuple[RenditionSpec, ...]:
    """A list of ``{name, width, height, fit}`` (or its JSON) -> specs. Raises ValueError naming the entry."""
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list) or not raw:
        raise ValueError("name at least one rendition: a list of {name, width, height, fit}")
    specs: list[RenditionSpec] = []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise ValueError(f"renditions[{index}] must be an object of name, width, height, fit")
        try:
            fit = parse_fit(item.get("fit", "contain"))
            specs.append(RenditionSpec(name=parse_rendition_name(item.get("name")), width=parse_side(item.get("width")),
                                       height=parse_side(item.get("height")),
                                       fit="cover" if fit == "cover" else "contain"))
        except ValueError as exc:
            raise ValueError(f"renditions[{index}]: {exc}") from None
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"rendition names must be unique; repeated: {', '.join(repeated)}")
    return tuple(specs)


def check_sides_for_format(renditions: Sequence[RenditionSpec], output_format: str) -> None:
    """A rendition box larger than the output encoder can write would fail every encode: refuse it."""
    limit = FORMAT_MAX_SIDE.get(output_format)
    if limit is None:
        return
    for spec in renditions:
        side = max(spec.width, spec.height)
        if side > limit:
            raise ValueError(
                f"rendition {spec.name!r} is {side} px on one side: {output_format} images are at most {limit} px"
            )


def check_sides_for_formats(renditions: Sequence[RenditionSpec], formats: Sequence[str]) -> None:
    for output_format in formats:
        check_sides_for_format(renditions, output_format)


def parse_output_format(value: Any) -> str:
    text = str(value).lower()
    if text not in OUTPUT_FORMATS:
        raise ValueError(f"output format {value!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    return text


def parse_output_formats(value: Any) -> tuple[str, ...]:
    """A list of output formats (or the comma-separated ``OUTPUT_FORMATS``): at least one, no repeats."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    formats = tuple(parse_output_format(item) for item in items if item != "")
    if not formats:
        raise ValueError(f"name at least one output format of {', '.join(OUTPUT_FORMATS)}")
    if len(set(formats)) != len(formats):
        raise ValueError(f"output formats must not repeat (got {', '.join(formats)})")
    return formats


def parse_metadata(value: Any) -> str:
    """``strip``: no EXIF/XMP in renditions; ``copyright``: keep the Artist and Copyright EXIF fields."""
    if value not in METADATA:
        raise ValueError(f"metadata {value!r} is not one of {', '.join(METADATA)}")
    return str(value)


def parse_prefix(value: str, *, allow_empty: bool) -> str:
    """A key prefix: empty (only where allowed) or ending with '/', not starting with '/', no '//'."""
    if value == "":
        if allow_empty:
            return value
        raise ValueError("must not be empty: name the prefix new images are uploaded under, e.g. 'uploads/'")
    if not value.endswith("/"):
        raise ValueError(f"must end with '/' (e.g. {value + '/'!r})")
    if value.startswith("/") or "//" in value:
        raise ValueError("must not start with '/' or contain '//'")
    return value


def parse_quality(value: int) -> int:
    low, high = QUALITY_RANGE
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def parse_positive(value: int) -> int:
    if value < 1:
        raise ValueError("must be a positive number")
    return value


def renditions_json(renditions: Sequence[RenditionSpec]) -> str:
    """The ``RENDITIONS`` variable: what ``parse_renditions`` reads back."""
    return json.dumps([{"name": r.name, "width": r.width, "height": r.height, "fit": r.fit} for r in renditions],
                      separators=(",", ":"))


# ----------------------------------------------------------------------------------------- Config


@dataclass(frozen=True)
class Config:
    """``DEST_BUCKET``, ``SOURCE_PREFIX``, ``DEST_PREFIX``, ``RENDITIONS`` (JSON), ``OUTPUT_FORMAT``,
    ``QUALITY``, ``MAX_PIXELS``, ``MAX_BYTES``, ``DELETE_RENDITIONS``, ``METADATA``, ``NOTIFY_TOPIC_ARN``: all
    required. ``OUTPUT_FORMATS`` is a comma-separated list."""

    dest_bucket: str
    source_prefix: str
    dest_prefix: str
    renditions: tuple[RenditionSpec, ...]
    output_formats: tuple[str, ...]
    quality: int
    max_pixels: int
    max_bytes: int
    delete_renditions: bool
    metadata: str
    topic_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        renditions = _parsed("RENDITIONS", parse_renditions, env_json("RENDITIONS", env=env))
        output_formats = _parsed("OUTPUT_FORMATS", parse_output_formats, env_str("OUTPUT_FORMATS", env=env))
        _parsed("RENDITIONS", functools.partial(check_sides_for_formats, formats=output_formats), renditions)
        return cls(
            dest_bucket=_parsed("DEST_BUCKET", parse_bucket_name, env_str("DEST_BUCKET", env=env)),
            source_prefix=_parsed("SOURCE_PREFIX", lambda v: parse_prefix(v, allow_empty=False),
                                  env_str("SOURCE_PREFIX", env=env)),
            dest_prefix=_parsed("DEST_PREFIX", lambda v: parse_prefix(v, allow_empty=True),
                                env_present("DEST_PREFIX", env=env)),
            renditions=renditions,
            output_formats=output_formats,
            quality=_parsed("QUALITY", parse_quality, env_int("QUALITY", env=env)),
            max_pixels=_parsed("MAX_PIXELS", parse_positive, env_int("MAX_PIXELS", env=env)),
            max_bytes=_parsed("MAX_BYTES", parse_positive, env_int("MAX_BYTES", env=env)),
            delete_renditions=env_bool("DELETE_RENDITIONS", env=env),
            metadata=_parsed("METADATA", parse_metadata, env_str("METADATA", env=env)),
            topic_arn=env_str("NOTIFY_TOPIC_ARN", env=env),
        )

