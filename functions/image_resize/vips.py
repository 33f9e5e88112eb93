"""The libvips engine: decode and resize with libvips (pyvips), for the formats where it beats Pillow.

libvips decodes in a stream and resizes while it decodes (``thumbnail_buffer``: shrink-on-load for WebP,
which libwebp decodes at a reduced scale), so the full-size picture is never held in memory, and its
resampling is vectorised. The renditions come back as Pillow images: orientation, cropping, colour
policy, metadata and encoding stay the Pillow pipeline's (``imaging``), so both engines give the same
renditions (same sizes, same orientation, same ICC and EXIF policy, same encoders and settings).

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


def available() -> bool:
    """Whether pyvips and libvips can be loaded here."""
    try:
        pyvips()
    except (ImportError, OSError):
        return False
    return True


def load_scaled(data: bytes, size: tuple[int, int]) -> Any:
    """``data`` decoded and scaled to exactly ``size`` (stored orientation; the caller turns it upright).

    Decoding errors of the file raise ``pyvips.Error`` (``fail_on=error``: a truncated or corrupt file is
    an error, as with Pillow, not a partly grey picture).
    """
    image = pyvips().Image.thumbnail_buffer(
        data, size[0], height=size[1], size="force", no_rotate=True, option_string="fail_on=error"
    )
    return image.copy_memory()


def scaled(image: Any, size: tuple[int, int]) -> Any:
    """An in-memory libvips image scaled to exactly ``size``."""
    if (image.width, image.height) == size:
        return image
    return image.thumbnail_image(size[0], height=size[1], size="force", no_rotate=True).copy_memory()


def to_pillow(image: Any) -> Image.Image:
    """The pixels of a libvips image as a Pillow image (8-bit L, RGB or RGBA; grey with alpha -> RGBA)."""
    if image.format != "uchar":
        image = image.cast("uchar")
    mode = _MODES[image.bands]
    pil = Image.frombytes(mode, (image.width, image.height), image.write_to_memory())
    return pil.convert("RGBA") if mode == "LA" else pil
