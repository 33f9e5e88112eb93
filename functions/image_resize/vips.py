"""The libvips engine: decode and resize with libvips (pyvips), for the formats where it beats Pillow.

libvips decodes and resizes in one pipeline (``thumbnail_buffer``: shrink-on-load for WebP, which
libwebp decodes at a reduced scale), without Pillow's full-size copies, and its resampling is
vectorised (the figures: benchmarks/image_resize.py, docs/image_resize.md). HEIC/HEIF: the libvips of
the pyvips-binary wheel has no HEVC decoder, so libheif (pillow-heif) decodes and libvips scales
straight from pillow-heif's buffer (no copy of the full-size picture into Pillow's 4-bytes-per-pixel
layout). The renditions come back as Pillow images: orientation, cropping, colour policy, metadata and
encoding stay the Pillow pipeline's (``imaging``), so both engines give the same renditions (same
sizes, same orientation, same ICC and EXIF policy, same encoders and settings).

Only the common still pictures take this path: 8-bit grey, RGB or RGBA without a colour key; anything
else (palettes, 16-bit, colour keys, animations) stays on the Pillow engine, which handles every case.
pyvips (with libvips from the ``pyvips-binary`` wheel) is imported on the first such source only.
"""

from __future__ import annotations

import functools
from typing import Any

from PIL import Image

# libvips band count -> Pillow mode of the pixels it gives back (8-bit).
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@functools.cache
def pyvips() -> Any:
    """The pyvips module, its operation cache off (each source is decoded once, nothing is reused)."""
    import pyvips as module  # libvips from the pyvips-binary wheel; imported only when a source needs it

    module.cache_set_max(0)
    return module


def load_scaled(data: bytes, size: tuple[int, int], fmt: str) -> Any:
    """``data`` decoded and scaled to exactly ``size`` (stored orientation; the caller turns it upright).

    Decoding errors of the file raise ``pyvips.Error`` (``fail_on=error``: a truncated or corrupt file is
    an error, as with Pillow, not a partly grey picture) or pillow-heif's errors.
    """
    if fmt == "HEIF":
        return scaled(_heif_pixels(data), size)
    image = pyvips().Image.thumbnail_buffer(
        data, size[0], height=size[1], size="force", no_rotate=True, option_string="fail_on=error"
    )
    return image.copy_memory()


def _heif_pixels(data: bytes) -> Any:
    """The primary picture of a HEIF file decoded by libheif (irot/imir applied), as a libvips image over
    pillow-heif's buffer (not copied, padded rows included)."""
    from pillow_heif import open_heif

    picture = open_heif(data, convert_hdr_to_8bit=True, remove_stride=False)
    buffer = picture.data  # decodes; the size is read after it (libheif may change it while decoding)
    bands = {"L": 1, "RGB": 3, "RGBA": 4}[picture.mode]
    width, height = picture.size
    # Rows are ``stride`` bytes, possibly padded: read as one band of bytes, cut to the pixels, then every
    # ``bands`` bytes folded into one pixel. All lazy views of the same buffer.
    rows = pyvips().Image.new_from_memory(buffer, picture.stride, height, 1, "uchar")
    pixels = rows.crop(0, 0, width * bands, height)
    if bands == 1:
        return pixels
    return pixels.bandfold(factor=bands).copy(interpretation="srgb")


def scaled(image: Any, size: tuple[int, int]) -> Any:
    """A libvips image scaled to exactly ``size``, in memory."""
    if (image.width, image.height) == size:
        return image.copy_memory()
    return image.thumbnail_image(size[0], height=size[1], size="force", no_rotate=True).copy_memory()


def to_pillow(image: Any) -> Image.Image:
    """The pixels of a libvips image as a Pillow image (8-bit L, RGB or RGBA; grey with alpha -> RGBA)."""
    if image.format != "uchar":
        image = image.cast("uchar")
    mode = _MODES[image.bands]
    pil = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    return pil.convert("RGBA") if mode == "LA" else pil
