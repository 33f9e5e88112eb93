"""Settings of the `image_resize` automation (cdk.json: context.automations.image_resize).

Every value is checked by the function's own parsers (``image_resize.config``), and
``function_environment()`` writes what ``Config.from_env`` reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from image_resize.config import (
    MAX_SIDE,
    check_sides_for_formats,
    parse_bucket_name,
    parse_output_formats,
    parse_positive,
    parse_prefix,
    parse_quality,
    parse_rendition_name,
    parse_renditions,
    parse_side,
    renditions_json,
)
from shared.names import parse_kms_key_arn
from stacks.settings.base import AutomationSettings, StrictModel


class Rendition(StrictModel):
    """One output size: ``<dest_prefix><name>/<source key without source_prefix>``."""

    name: str = Field(description="Path segment of the rendition's keys: letters, digits, '_', '-', '.'.")
    width: int = Field(description=f"Width of the box in pixels (1-{MAX_SIDE}; WebP at most 16383).")
    height: int = Field(description=f"Height of the box in pixels (1-{MAX_SIDE}; WebP at most 16383).")
    fit: Literal["contain", "cover"] = Field(
        "contain", description="contain: fit inside the box, keep aspect; cover: fill the box, centre crop."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return parse_rendition_name(value)

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int) -> int:
        return parse_side(value)


OutputFormat = Literal["original", "jpeg", "webp", "png", "avif"]


def _original() -> list[OutputFormat]:
    return ["original"]


def _default_renditions() -> list[Rendition]:
    return [
        Rendition(name="large", width=2048, height=2048),
        Rendition(name="medium", width=1024, height=1024),
        Rendition(name="thumb", width=256, height=256, fit="cover"),
    ]


class ImageResizeSettings(AutomationSettings):
    """Resize images uploaded under ``source_prefix`` into named renditions under ``dest_prefix``."""

    memory_mb: int = Field(
        1024, ge=128, le=10240,
        description="Lambda memory size in MB (decoding a 24 MP image needs ~70 MB; more memory is more CPU).",
    )
    reserved_concurrency: int = Field(
        10, ge=2, le=1000,
        description="Concurrent executions reserved for (and capping) the function: a bulk upload of thousands of "
        "images is worked off at this pace (the rest waits in Lambda's async queue, or in the SQS queue: the "
        "trigger's maximum concurrency is the same) instead of "
        "taking the account's whole concurrency from every other function. Lambda keeps at least 100 unreserved: "
        "the account's limit must exceed this by 100.",
    )
    source_bucket_name: str = Field(
        "", description="Existing bucket to watch, imported by name; empty: the stack creates the source bucket."
    )
    source_prefix: str = Field("uploads/", description="Prefix of the keys to resize; must end with '/'.")
    dest_bucket_name: str = Field(
        "", description="Existing bucket the renditions are written to; empty: the source bucket."
    )
    dest_prefix: str = Field("resized/", description="Prefix of the rendition keys; must end with '/'.")
    renditions: list[Rendition] = Field(
        default_factory=_default_renditions,
        description="Output sizes: list of {name, width, height, fit (contain|cover)}.",
    )
    output_formats: list[OutputFormat] = Field(
        default_factory=_original,
        description="Formats of every rendition, e.g. [\"avif\", \"webp\", \"jpeg\"] (one decode per source); "
        "original keeps the source's (TIFF becomes PNG, HEIC/HEIF JPEG).",
    )
    output_format: OutputFormat | None = Field(
        None, description="Deprecated: one format, the same as output_formats: [<format>]. Synth warns."
    )
    metadata: Literal["strip", "copyright"] = Field(
        "strip", description="strip: no EXIF/XMP in renditions (GPS included); copyright: keep the Artist and "
        "Copyright EXIF fields. The ICC profile of RGB and grey sources is kept either way.",
    )
    kms_key_arn: str = Field(
        "", description="SSE-KMS: ARN of the customer-managed key the source and destination buckets are encrypted "
        "with (the role gets kms:Decrypt and kms:GenerateDataKey on it, through S3 only); create: the stack's own "
        "source bucket is encrypted with a key of its own; empty: SSE-S3.",
    )
    quality: int = Field(85, description="Encoder quality for JPEG, WebP and AVIF (1-100).")
    max_pixels: int = Field(
        50_000_000, description="Images with more pixels (width x height, all frames) are rejected unread."
    )
    max_bytes: int = Field(
        50 * 1024 * 1024, description="Source objects larger than this many bytes are rejected without download."
    )
    delete_renditions: bool = Field(
        False, description="Delete a source's renditions when the source is deleted."
    )
    trigger: Literal["direct", "queue"] = Field(
        "direct", description="direct: S3 notifications invoke the function; queue: S3 -> SQS -> the function."
    )
    batch_size: int = Field(5, description="queue trigger: messages per invocation (1-10).")

    @field_validator("source_bucket_name", "dest_bucket_name")
    @classmethod
    def _bucket(cls, value: str) -> str:
        return parse_bucket_name(value) if value else value

    @field_validator("source_prefix")
    @classmethod
    def _source_prefix(cls, value: str) -> str:
        return parse_prefix(value, allow_empty=False)

    @field_validator("dest_prefix")
    @classmethod
    def _dest_prefix(cls, value: str) -> str:
        return parse_prefix(value, allow_empty=True)

    @field_validator("renditions")
    @classmethod
    def _renditions(cls, value: list[Rendition]) -> list[Rendition]:
        parse_renditions([r.model_dump() for r in value])
        return value

    @field_validator("quality")
    @classmethod
    def _quality(cls, value: int) -> int:
        return parse_quality(value)

    @field_validator("max_pixels", "max_bytes")
    @classmethod
    def _positive(cls, value: int) -> int:
        return parse_positive(value)

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int) -> int:
        if not 1 <= value <= 10:
            raise ValueError("must be between 1 and 10")
        return value

    @model_validator(mode="after")
    def _encoder_limits(self) -> ImageResizeSettings:
        check_sides_for_formats(parse_renditions([r.model_dump() for r in self.renditions]), self.formats)
        return self

    @model_validator(mode="after")
    def _own_key_needs_own_bucket(self) -> ImageResizeSettings:
        if self.kms_key_arn == "create" and self.source_bucket_name:
            raise ValueError("kms_key_arn 'create' encrypts the bucket this stack creates; with source_bucket_name "
                             "(an existing bucket) name the ARN of its key instead")
        return self

    @model_validator(mode="after")
    def _deprecated_output_format(self) -> ImageResizeSettings:
        if self.output_format is not None and "output_formats" in self.model_fields_set:
            raise ValueError("set output_formats only: output_format is its deprecated one-format spelling")
        return self

    @property
    def formats(self) -> tuple[str, ...]:
        """The output formats, from ``output_formats`` or the deprecated ``output_format``."""
        return parse_output_formats([self.output_format] if self.output_format else self.output_formats)

    @field_validator("output_formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        parse_output_formats(value)
        return value

    @field_validator("kms_key_arn")
    @classmethod
    def _kms(cls, value: str) -> str:
        if value in ("", "create"):
            return value
        try:
            return parse_kms_key_arn(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, 'create' or empty") from None

    def function_environment(self) -> dict[str, str]:
        """Every variable of ``image_resize.config.Config`` that comes from settings (the stack adds
        DEST_BUCKET and NOTIFY_TOPIC_ARN, which name its resources)."""
        return {
            "SOURCE_PREFIX": self.source_prefix,
            "DEST_PREFIX": self.dest_prefix,
            "RENDITIONS": renditions_json(parse_renditions([r.model_dump() for r in self.renditions])),
            "OUTPUT_FORMATS": ",".join(self.formats),
            "METADATA": self.metadata,
            "QUALITY": str(self.quality),
            "MAX_PIXELS": str(self.max_pixels),
            "MAX_BYTES": str(self.max_bytes),
            "DELETE_RENDITIONS": "true" if self.delete_renditions else "false",
        }

    @property
    def same_bucket(self) -> bool:
        return not self.dest_bucket_name or self.dest_bucket_name == self.source_bucket_name

    @model_validator(mode="after")
    def _no_loop(self) -> ImageResizeSettings:
        if self.same_bucket and (
            self.dest_prefix.startswith(self.source_prefix) or self.source_prefix.startswith(self.dest_prefix)
        ):
            raise ValueError(
                f"dest_prefix {self.dest_prefix!r} overlaps source_prefix {self.source_prefix!r} in the same "
                "bucket: renditions would trigger the function again. Use prefixes where neither is a prefix "
                "of the other (e.g. uploads/ and resized/), or a separate dest_bucket_name"
            )
        return self
