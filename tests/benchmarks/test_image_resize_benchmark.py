"""Smoke test of benchmarks/image_resize.py on tiny sources: every engine does the same work (nine outputs of
the same sizes), and the memory probe runs. No timing is asserted: the figures are the benchmark's."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from benchmarks import image_resize as bench


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "HEIF", "WEBP"])
def test_every_engine_makes_the_same_nine_renditions(fmt: str) -> None:
    data = bench.make_source(fmt, (200, 150))
    bench._register_heif()
    sizes = {}
    for engine, func in bench.ENGINE_FUNCS.items():
        outputs = func(data)
        assert len(outputs) == len(bench.SPECS) * len(bench.FORMATS)
        sizes[engine] = [(Image.open(io.BytesIO(out)).format, Image.open(io.BytesIO(out)).size) for out in outputs]
    assert len({tuple(value) for value in sizes.values()}) == 1, sizes
    assert sizes["libvips"][0] == ("AVIF", (200, 150))  # never upscaled


def test_memory_probe_and_interleaved_times() -> None:
    data = bench.make_source("PNG", (200, 150))
    growth = bench.peak_growth("function_libvips", data, ("jpeg",))
    assert growth is None or growth >= 0
    times = bench.median_times(data, ("function_pillow", "naive"), repeats=1)
    assert set(times) == {"function_pillow", "naive"}
