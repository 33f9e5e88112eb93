"""image_resize demo: three real uploads (EXIF-rotated JPEG, PNG with alpha, animated GIF) into renditions."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote_plus

from PIL import Image, ImageDraw

from demo.harness import DemoContext

TITLE = "resize an EXIF-rotated JPEG, an alpha PNG and an animated GIF uploaded to S3"
BUCKET = "demo-photos"


def _photo() -> bytes:
    """A portrait 'photo' stored sideways with EXIF orientation 6 and a GPS position, as phones do."""
    upright = Image.new("RGB", (1200, 1600))
    draw = ImageDraw.Draw(upright)
    for y in range(1600):
        draw.line([(0, y), (1200, y)], fill=(40 + y // 10, 120 + y // 20, 220 - y // 10))
    draw.ellipse((350, 250, 850, 750), fill=(255, 210, 60))  # a sun, at the top
    draw.rectangle((0, 1250, 1200, 1600), fill=(40, 110, 50))  # grass, at the bottom
    draw.polygon([(600, 820), (420, 1100), (780, 1100)], fill=(240, 240, 240))  # an arrow pointing up
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote: sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x010F] = "DemoPhone"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _logo() -> bytes:
    logo = Image.new("RGBA", (900, 600), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.rounded_rectangle((60, 60, 840, 540), radius=90, fill=(220, 40, 90, 230))
    draw.ellipse((300, 150, 600, 450), fill=(255, 255, 255, 255))
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    return buffer.getvalue()


def _animation() -> bytes:
    frames = []
    for index in range(8):
        frame = Image.new("RGB", (480, 320), (20, 20, 40))
        draw = ImageDraw.Draw(frame)
        x = 40 + index * 50
        draw.ellipse((x, 120, x + 80, 200), fill=(90, 200, 255))
        frames.append(frame)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=90, loop=0)
    return buffer.getvalue()


def _s3_event(key: str, etag: str, size: int, region: str) -> dict[str, Any]:
    """An S3 notification as S3 sends it (key URL-encoded, '+' for spaces)."""
    return {
        "Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": region,
            "eventTime": "2026-11-28T08:05:00.000Z", "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AIDADEMO"},
            "requestParameters": {"sourceIPAddress": "198.51.100.7"},
            "responseElements": {"x-amz-request-id": "DEMO", "x-amz-id-2": "DEMO"},
            "s3": {
                "s3SchemaVersion": "1.0", "configurationId": "image-resize",
                "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "DEMO"}, "arn": f"arn:aws:s3:::{BUCKET}"},
                "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag,
                           "sequencer": "0055AED6DCD90281E5"},
            },
        }]
    }


def run(ctx: DemoContext) -> str:
    s3 = ctx.client("s3")
    if ctx.region == "us-east-1":
        s3.create_bucket(Bucket=BUCKET)
    else:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": ctx.region})
    env = ctx.function_env("image_resize", DEST_BUCKET=BUCKET)
    source_prefix, dest_prefix = env["SOURCE_PREFIX"], env["DEST_PREFIX"]
    renditions = json.loads(env["RENDITIONS"])
    described = ", ".join(f"{r['name']} {r['width']}x{r['height']} {r['fit']}" for r in renditions)
    ctx.say(f"renditions from the template: {described}")

    uploads = {
        f"{source_prefix}holiday/Beach Photo.JPG": (_photo(), "image/jpeg"),
        f"{source_prefix}brand/logo.png": (_logo(), "image/png"),
        f"{source_prefix}fun/bouncing ball.gif": (_animation(), "image/gif"),
    }
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    for key, (data, content_type) in uploads.items():
        etag = s3.put_object(Bucket=BUCKET, Key=key, Body=data, ContentType=content_type)["ETag"].strip('"')
        (ctx.out_dir / ("source__" + key.replace("/", "__"))).write_bytes(data)
        result = ctx.invoke("image_resize", _s3_event(key, etag, len(data), ctx.region), env)
        statuses = [item["status"] for item in result["results"]]
        if statuses != ["written"]:
            raise AssertionError(f"{key}: expected renditions to be written, got {result}")
        ctx.say(f"uploaded s3://{BUCKET}/{key} ({len(data):,} bytes) -> {len(result['results'][0]['renditions'])} "
                "renditions")

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=dest_prefix).get("Contents", [])
    if len(listed) != len(uploads) * len(renditions):
        raise AssertionError(f"expected {len(uploads) * len(renditions)} renditions, found {len(listed)}")
    for item in sorted(listed, key=lambda i: i["Key"]):
        obj = s3.get_object(Bucket=BUCKET, Key=item["Key"])
        data = obj["Body"].read()
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
        if image.getexif():
            raise AssertionError(f"{item['Key']} still carries EXIF")
        (ctx.out_dir / item["Key"].replace("/", "__")).write_bytes(data)
        ctx.say(f"  {item['Key']}: {image.width}x{image.height} {image.format} {image.mode}"
                f"{f' {frames} frames' if frames > 1 else ''}, {len(data):,} bytes, "
                f"metadata source-etag={obj['Metadata']['source-etag'][:8]}…")

    # The photo was stored sideways: its renditions are portrait once EXIF orientation is applied.
    photo_large = next(i["Key"] for i in listed if "Beach Photo" in i["Key"] and renditions[0]["name"] in i["Key"])
    large = Image.open(io.BytesIO(s3.get_object(Bucket=BUCKET, Key=photo_large)["Body"].read()))
    if not large.height > large.width:
        raise AssertionError(f"EXIF orientation not applied to {photo_large}: {large.size}")

    # Same event again: nothing is rewritten.
    key = next(iter(uploads))
    head = s3.head_object(Bucket=BUCKET, Key=key)
    again = ctx.invoke("image_resize", _s3_event(key, head["ETag"].strip('"'), head["ContentLength"], ctx.region), env)
    if [item["status"] for item in again["results"]] != ["skipped"]:
        raise AssertionError(f"repeated event rewrote renditions: {again}")
    ctx.say("the same event again: skipped, renditions already carry the source's ETag")

    reports = [r for r in ctx.reports() if r["metadata"]["additionalContext"].get("automation") == "image_resize"]
    if len(reports) != len(uploads):
        raise AssertionError(f"expected {len(uploads)} action reports, got {len(reports)}")
    ctx.say(f"{len(reports)} action reports published, e.g. \"{reports[0]['content']['title']}\"")
    ctx.say(f"renditions written to {ctx.out_dir}/")
    return f"{len(uploads)} images -> {len(listed)} renditions (EXIF applied and stripped), repeat event skipped"
