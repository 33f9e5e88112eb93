"""Fixtures of the image_resize tests: small real images made with Pillow, a moto S3 + ops topic, event builders."""

from __future__ import annotations

import copy
import io
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from demo.harness import OpsTopicTap
from tests.conftest import load_event

REGION = "us-east-1"
BUCKET = "photos-example"
OTHER_BUCKET = "renditions-example"
RENDITIONS = [
    {"name": "large", "width": 320, "height": 320, "fit": "contain"},
    {"name": "thumb", "width": 64, "height": 64, "fit": "cover"},
]


# ----------------------------------------------------------------------------------- images


def gradient(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A photo-ish image: gradients in every channel, so resizing and orientation are visible."""
    width, height = size
    horizontal = Image.linear_gradient("L").rotate(90).resize(size)
    vertical = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (horizontal, vertical, Image.new("L", size, 90)))
    if mode == "RGBA":
        alpha = Image.new("L", size, 0)
        alpha.paste(255, (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
        image.putalpha(alpha)
    elif mode != "RGB":
        image = image.convert(mode)
    return image


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def jpeg(size: tuple[int, int] = (300, 200), *, orientation: int | None = None, gps: bool = False,
         mode: str = "RGB") -> bytes:
    """A JPEG; ``orientation`` sets the EXIF Orientation tag, ``gps`` adds a GPS IFD."""
    image = gradient(size, mode)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    exif[0x010F] = "TestCam"
    return encode(image, "JPEG", quality=90, exif=exif)


def png_alpha(size: tuple[int, int] = (240, 160)) -> bytes:
    return encode(gradient(size, "RGBA"), "PNG")


def animated_gif(size: tuple[int, int] = (120, 80), frames: int = 4) -> bytes:
    images = [Image.new("RGB", size, (60 * i, 255 - 60 * i, 40)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=80, loop=0)
    return buffer.getvalue()


def pixel_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (IHDR patched, CRC recomputed)."""
    data = bytearray(encode(Image.new("L", (8, 8), 0), "PNG"))
    # signature (8) | length (4) | b"IHDR" (4) | width (4) | height (4) | 5 bytes | CRC (4)
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ----------------------------------------------------------------------------------- AWS


@dataclass
class Sandbox:
    s3: Any
    tap: OpsTopicTap
    topic_arn: str

    def put(self, key: str, data: bytes, bucket: str = BUCKET, **extra: Any) -> str:
        """Upload; returns the ETag without quotes."""
        response = self.s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)
        return str(response["ETag"]).strip('"')

    def keys(self, prefix: str = "", bucket: str = BUCKET) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def get(self, key: str, bucket: str = BUCKET) -> dict[str, Any]:
        response = self.s3.get_object(Bucket=bucket, Key=key)
        response["Data"] = response["Body"].read()
        return dict(response)

    def reports(self) -> list[dict[str, Any]]:
        return self.tap.messages()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "DEST_BUCKET": BUCKET,
        "SOURCE_PREFIX": "uploads/",
        "DEST_PREFIX": "resized/",
        "RENDITIONS": json.dumps(RENDITIONS),
        "OUTPUT_FORMATS": "original",
        "METADATA": "strip",
        "QUALITY": "85",
        "MAX_PIXELS": "50000000",
        "MAX_BYTES": "5000000",
        "DELETE_RENDITIONS": "true",
        "POWERTOOLS_SERVICE_NAME": "image_resize",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def sandbox(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (BUCKET, OTHER_BUCKET):
            s3.create_bucket(Bucket=bucket)
        tap = OpsTopicTap(REGION)
        env["NOTIFY_TOPIC_ARN"] = tap.topic_arn
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", tap.topic_arn)
        yield Sandbox(s3=s3, tap=tap, topic_arn=tap.topic_arn)


# ----------------------------------------------------------------------------------- events


def s3_event(
    key: str, etag: str = "", size: int = 1, bucket: str = BUCKET, name: str = "ObjectCreated:Put"
) -> dict[str, Any]:
    """An S3 notification as S3 sends it: the key URL-encoded with '+' for spaces."""
    fixture = "s3_object_removed_delete.json" if name.startswith("ObjectRemoved") else "s3_object_created_put.json"
    event = copy.deepcopy(load_event(f"image_resize/{fixture}"))
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    if not name.startswith("ObjectRemoved"):
        record["s3"]["object"]["eTag"] = etag
        record["s3"]["object"]["size"] = size
    return event


def sqs_event(*notifications: dict[str, Any] | str) -> dict[str, Any]:
    """SQS messages whose bodies are the given S3 notifications (or raw strings)."""
    template = load_event("image_resize/sqs_s3_notification.json")["Records"][0]
    records = []
    for index, body in enumerate(notifications):
        record = copy.deepcopy(template)
        record["messageId"] = f"message-{index}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        records.append(record)
    return {"Records": records}


def eventbridge_event(key: str, etag: str = "", size: int = 1, bucket: str = BUCKET,
                      deleted: bool = False) -> dict[str, Any]:
    fixture = "eventbridge_object_deleted.json" if deleted else "eventbridge_object_created.json"
    event = copy.deepcopy(load_event(f"image_resize/{fixture}"))
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    if not deleted:
        event["detail"]["object"]["etag"] = etag
        event["detail"]["object"]["size"] = size
    return event

