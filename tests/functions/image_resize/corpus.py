"""A corpus of camera-like and broken image files, written with Pillow in the tests (nothing checked in).

Each ``Sample`` says what the function must make of it:

- ``renders``: renditions whose upright size is ``upright`` scaled into the box, with alpha when ``alpha``,
  ``frames`` frames, and the red marker in the top-left quarter when ``marked`` (so a wrong rotation or
  mirror is seen, not only a wrong size);
- ``rejects``: a permanent rejection (``imaging.Rejected``), never another exception;
- ``either``: a mutated file: renditions or a rejection, never another exception.

``corpus(long=False)`` is the short corpus of ``make test``; ``long=True`` adds more mutations per file
(``make lifetime``). Everything is seeded: the same corpus every run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pillow_heif
from PIL import Image

from tests.functions.image_resize.conftest import encode

Expect = Literal["renders", "rejects", "either"]
RED = (230, 20, 20)
BLUE = (20, 40, 220)
GREEN = (30, 190, 60)
UPRIGHT = (300, 200)  # every still sample shows a 300x200 picture once its orientation is applied
# ImageOps.exif_transpose turns the stored pixels upright with these; storing needs their inverse.
_UPRIGHT_TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
SUPPORTED = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "AVIF", "HEIF")
pillow_heif.register_heif_opener()  # the tests write HEIC files with pillow-heif's encoder (x265)


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    expect: Expect
    upright: tuple[int, int] = UPRIGHT
    alpha: bool = False
    frames: int = 1
    marked: bool = False
    source_format: str = ""


def marked(size: tuple[int, int] = UPRIGHT, mode: str = "RGB") -> Image.Image:
    """Blue picture, red top-left quarter, green bottom-right quarter: orientation mistakes move the red."""
    image = Image.new("RGB", size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1] // 2))
    image.paste(GREEN, (size[0] // 2, size[1] // 2, size[0], size[1]))
    if mode == "RGBA":
        image.putalpha(255)
        image.paste((0, 0, 0, 0), (size[0] // 2, size[1] // 2, size[0], size[1]))  # bottom-right clear
    elif mode != "RGB":
        image = image.convert(mode)
    return image


save = encode  # an image's bytes in a format, with the writer's parameters


def oriented(fmt: str, orientation: int, **params: Any) -> bytes:
    """A file whose pixels are stored turned, with the EXIF Orientation that turns them upright again."""
    image = marked()
    method = _UPRIGHT_TO_STORED[orientation]
    stored = image.transpose(method) if method is not None else image
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "CorpusCam"
    if fmt != "TIFF":  # Pillow's TIFF writer cannot take a GPS IFD given as a dict
        exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}
    return save(stored, fmt, exif=exif, **params)


def mpo(orientation: int = 6) -> bytes:
    """A camera JPEG with a second picture (MP extension: Pillow opens it as MPO)."""
    method = _UPRIGHT_TO_STORED[orientation]
    first = marked().transpose(method) if method is not None else marked()
    second = first.resize((first.width // 2, first.height // 2))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(first, "MPO", save_all=True, append_images=[second], exif=exif, quality=90)


def colour_key_png(mode: str) -> bytes:
    """An L or RGB PNG with a tRNS colour key: the key colour (the green quarter) is transparent."""
    image = marked(mode=mode)
    key = image.getpixel((image.width - 1, image.height - 1))
    return save(image, "PNG", transparency=key)


def sixteen_bit_png() -> bytes:
    image = Image.linear_gradient("L").resize(UPRIGHT).convert("I").point(lambda v: v * 257).convert("I;16")
    return save(image, "PNG")


def sixteen_bit_tiff() -> bytes:
    image = Image.linear_gradient("L").resize(UPRIGHT).convert("I").point(lambda v: v * 257).convert("I;16")
    return save(image, "TIFF")


def palette_png(transparent: bool) -> bytes:
    image = marked().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    params: dict[str, Any] = {}
    if transparent:
        params["transparency"] = image.getpixel((image.width - 1, image.height - 1))
    return save(image, "PNG", **params)


def _frames(count: int, *, first_opaque: bool) -> list[Image.Image]:
    """RGBA frames, the later ones with a transparent bottom-right quarter; the first opaque if asked."""
    frames = []
    for index in range(count):
        frame = marked(mode="RGBA")
        frame.paste((20 + 50 * index, 200, 20, 255), (0, UPRIGHT[1] // 2, UPRIGHT[0] // 2, UPRIGHT[1]))
        if index == 0 and first_opaque:
            frame.putalpha(255)
        frames.append(frame)
    return frames


def animation(fmt: str, count: int = 3, *, first_opaque: bool = False) -> bytes:
    frames = _frames(count, first_opaque=first_opaque)
    params: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": 80, "loop": 0}
    if fmt == "GIF":
        # Index 255 is transparent in every frame's control block, also when the first frame is opaque.
        paletted = [_gif(frame) for frame in frames]
        return save(paletted[0], "GIF", **{**params, "append_images": paletted[1:], "disposal": 2,
                                           "transparency": 255, "optimize": False})
    return save(frames[0], fmt, **params)


def _gif(frame: Image.Image) -> Image.Image:
    paletted = frame.convert("RGB").quantize(colors=255)
    clear = frame.getchannel("A").point(lambda a: 255 if a < 128 else 0)
    if clear.getbbox():
        paletted.paste(255, mask=clear)
        paletted.info["transparency"] = 255
    return paletted


def other_formats() -> list[Sample]:
    """Every other format Pillow writes: a clear rejection (not a supported image), never a crash."""
    image = marked()
    writers: dict[str, Callable[[], bytes]] = {
        "BMP": lambda: save(image, "BMP"),
        "DIB": lambda: save(image, "DIB"),
        "ICO": lambda: save(image, "ICO"),
        "ICNS": lambda: save(image.resize((64, 64)), "ICNS"),
        "IM": lambda: save(image, "IM"),
        "JPEG2000": lambda: save(image, "JPEG2000"),
        "MSP": lambda: save(image.convert("1"), "MSP"),
        "PCX": lambda: save(image, "PCX"),
        "PDF": lambda: save(image, "PDF"),
        "PPM": lambda: save(image, "PPM"),
        "QOI": lambda: save(image, "QOI"),
        "SGI": lambda: save(image, "SGI"),
        "SPIDER": lambda: save(image.convert("F"), "SPIDER"),
        "TGA": lambda: save(image, "TGA"),
        "XBM": lambda: save(image.convert("1"), "XBM"),
        "BLP": lambda: save(image.convert("P"), "BLP"),
        "DDS": lambda: save(image.convert("RGBA"), "DDS"),
        "PALM": lambda: save(image.convert("1"), "PALM"),
    }
    return [Sample(f"other-{name.lower()}", write(), "rejects", source_format=name)
            for name, write in writers.items()]


def good_samples() -> list[Sample]:
    """Files the function must resize correctly."""
    samples: list[Sample] = []
    for fmt, params in (("JPEG", {"quality": 90}), ("TIFF", {}), ("PNG", {}), ("WEBP", {"quality": 90}),
                        ("AVIF", {"quality": 90})):
        for orientation in range(1, 9):
            samples.append(Sample(f"orient-{fmt.lower()}-{orientation}", oriented(fmt, orientation, **params),
                                  "renders", marked=True, source_format=fmt))
    samples += [
        Sample("mpo-orient-6", mpo(6), "renders", marked=True, source_format="JPEG"),
        Sample("mpo-orient-1", mpo(1), "renders", marked=True, source_format="JPEG"),
        Sample("png-16bit", sixteen_bit_png(), "renders", source_format="PNG"),
        Sample("tiff-16bit", sixteen_bit_tiff(), "renders", source_format="TIFF"),
        Sample("png-palette", palette_png(False), "renders", marked=True, source_format="PNG"),
        Sample("png-palette-trns", palette_png(True), "renders", alpha=True, marked=True, source_format="PNG"),
        Sample("png-rgb-trns", colour_key_png("RGB"), "renders", alpha=True, marked=True, source_format="PNG"),
        Sample("png-l-trns", colour_key_png("L"), "renders", alpha=True, source_format="PNG"),
        Sample("png-rgba", save(marked(mode="RGBA"), "PNG"), "renders", alpha=True, marked=True,
               source_format="PNG"),
        Sample("png-la", save(marked(mode="RGBA").convert("LA"), "PNG"), "renders", alpha=True,
               source_format="PNG"),
        Sample("jpeg-cmyk", save(marked().convert("CMYK"), "JPEG"), "renders", marked=True, source_format="JPEG"),
        Sample("jpeg-grey", save(marked().convert("L"), "JPEG"), "renders", source_format="JPEG"),
        Sample("tiff-cmyk", save(marked().convert("CMYK"), "TIFF"), "renders", marked=True, source_format="TIFF"),
        Sample("gif-still", save(marked().convert("P"), "GIF"), "renders", marked=True, source_format="GIF"),
        Sample("avif", save(marked(), "AVIF", quality=90), "renders", marked=True, source_format="AVIF"),
        Sample("avif-alpha", save(marked(mode="RGBA"), "AVIF", quality=90), "renders", alpha=True, marked=True,
               source_format="AVIF"),
        # HEIF's rotation and mirror are its irot/imir properties, applied by libheif; an EXIF Orientation
        # inside a HEIF file is informational only and not applied again.
        Sample("heic", save(marked(), "HEIF", quality=90), "renders", marked=True, source_format="HEIF"),
        Sample("heic-exif-orientation-6", oriented("HEIF", 6, quality=90), "renders", upright=(200, 300),
               source_format="HEIF"),
        Sample("heic-alpha", save(marked(mode="RGBA"), "HEIF", quality=90), "renders", alpha=True, marked=True,
               source_format="HEIF"),
        Sample("gif-animated", animation("GIF"), "renders", alpha=True, frames=3, marked=True, source_format="GIF"),
        Sample("gif-animated-first-opaque", animation("GIF", first_opaque=True), "renders", alpha=True, frames=3,
               marked=True, source_format="GIF"),
        Sample("webp-animated", animation("WEBP"), "renders", alpha=True, frames=3, marked=True,
               source_format="WEBP"),
        Sample("png-animated", animation("PNG"), "renders", alpha=True, frames=3, marked=True, source_format="PNG"),
    ]
    return samples


def truncations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    cuts = sorted({max(1, len(data) * k // 8) for k in range(1, 8)} | {rng.randrange(1, len(data))
                                                                        for _ in range(count)})
    return [data[:cut] for cut in cuts[: max(count, 3)]]


def bit_flips(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            index = rng.randrange(8, len(mutated)) if len(mutated) > 8 else rng.randrange(len(mutated))
            mutated[index] ^= 1 << rng.randrange(8)
        out.append(bytes(mutated))
    return out


def wrong_headers(data: bytes, valid: list[Sample]) -> list[bytes]:
    """The magic bytes of another format in front of this one's body; the body of another after our header."""
    others = [s.data for s in valid if s.data[:4] != data[:4]][:3]
    return [other[:16] + data[16:] for other in others] + [data[:32] + other[32:] for other in others[:1]]


def corpus(long: bool = False, seed: int = 13) -> list[Sample]:
    """The whole corpus: the good files, every other Pillow format, and mutations of the good files."""
    rng = random.Random(seed)
    good = good_samples()
    samples = [*good, *other_formats()]
    samples += [
        Sample("empty", b"", "rejects"),
        Sample("text", b"this is a text file, not a picture\n" * 4, "rejects"),
    ]
    per_file = 6 if long else 2
    for sample in good:
        for index, data in enumerate(truncations(sample.data, rng, per_file)):
            samples.append(Sample(f"{sample.name}~cut{index}", data, "either", source_format=sample.source_format))
        for index, data in enumerate(bit_flips(sample.data, rng, per_file * 2)):
            samples.append(Sample(f"{sample.name}~flip{index}", data, "either", source_format=sample.source_format))
        if long or sample.name.endswith(("-1", "animated", "avif", "16bit")):
            for index, data in enumerate(wrong_headers(sample.data, good)):
                samples.append(Sample(f"{sample.name}~header{index}", data, "either",
                                      source_format=sample.source_format))
    return samples
