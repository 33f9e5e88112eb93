"""image_resize: speed and memory of the function against libvips and a naive Pillow baseline, in one run.

    python -m benchmarks image_resize          # or: python benchmarks/image_resize.py

Sources, generated in the run from a seeded random generator (the same pixels every run): noise over
gradients, so they compress like photos rather than flat colour:

- a 24-megapixel JPEG (6000x4000, quality 90), a 12-megapixel PNG, HEIC and WebP (4000x3000, quality 90).

Each source is made into three renditions (boxes of 2048, 1024 and 256 px, contain) in three formats
(AVIF, WebP, JPEG at quality 85): nine outputs. The engines, with the same encoder settings:

- ``naive``: what the Lambda thumbnail tutorial does: open, decode once, ``resize(LANCZOS)`` from full
  size for each rendition;
- ``function``: ``image_resize.imaging.render``, exactly what the Lambda runs, with each of its engines
  (``function_pillow``; ``function_libvips``: libvips decoding and resizing, Pillow orienting, cropping and
  encoding): the figures the choice of ``imaging.VIPS_FORMATS`` is made by. ``function_vs_*`` is the
  engine chosen for the format;
- ``libvips``: pyvips (libvips from the ``pyvips-binary`` wheel), written the way libvips is meant to be
  used: ``thumbnail_buffer`` for the largest rendition (shrink-on-load: JPEG DCT scaling, WebP scaled
  decoding), each smaller one from the previous one in memory, the same encoder settings. libvips runs
  with one worker thread (``concurrency_set(1)``): the function's default 1024 MB gets about 0.6 vCPU on
  Lambda, where more threads gain nothing, and Pillow resizes on one thread. Its operation cache is off so
  repeats do not reuse results. The wheel's libheif has no HEVC decoder (patents), so for the HEIC source
  libvips starts from the pixels pillow-heif's libheif decoded (``new_from_memory`` over its buffer, no
  copy) and does the rest itself; the function's HEIC engine is libheif and libvips that same way.

Time: the median of ``REPEATS`` runs of each engine, the engines interleaved (a run of each in turn, the
order rotated) so the noise of a shared machine hits them alike; ratios, not absolute times, are the
figures. Memory: how far the peak RSS of a fresh child process rises above its RSS once the source bytes
are read and the engine has rendered a tiny picture of the same format (so the libraries' code and the
codecs' start-up memory are not counted; ``/proc/self/clear_refs`` resets the peak, ``VmHWM`` reads it). RSS
and not tracemalloc: Pillow, libheif and libvips allocate pixel memory outside Python's allocator, so
tracemalloc sees none of it. It is compared with the decoded source, width x height x 3 bytes.
"""

from __future__ import annotations

import gc
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from image_resize import imaging  # noqa: E402
from image_resize.planning import RenditionSpec  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
STAGE_REPEATS = int(os.environ.get("BENCH_STAGE_REPEATS", "9"))
MEMORY_REPEATS = int(os.environ.get("BENCH_MEMORY_REPEATS", "1"))
QUALITY = 85
SEED = 20261201
FORMATS = ("avif", "webp", "jpeg")
SPECS = [RenditionSpec("large", 2048, 2048), RenditionSpec("medium", 1024, 1024), RenditionSpec("small", 256, 256)]
SOURCES: dict[str, tuple[str, tuple[int, int]]] = {
    "jpeg_24mp": ("JPEG", (6000, 4000)),
    "png_12mp": ("PNG", (4000, 3000)),
    "heic_12mp": ("HEIF", (4000, 3000)),
    "webp_12mp": ("WEBP", (4000, 3000)),
}
# Engines per source: the reference, the baseline and the function with each engine it could use there.
ENGINES = ("function_pillow", "function_libvips", "libvips", "naive")
TARGET_VS_LIBVIPS = 1.0
TARGET_PEAK_VS_DECODED = 1.5


def _register_heif() -> None:
    from pillow_heif import register_heif_opener

    register_heif_opener()


def make_source(fmt: str, size: tuple[int, int], seed: int = SEED) -> bytes:
    """A photo-like test image, the same bytes of pixels for a given seed: noise over gradients."""
    rng = random.Random(seed)
    noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    gradient = Image.linear_gradient("L").resize(size)
    radial = Image.radial_gradient("L").resize(size)
    flipped = gradient.transpose(Image.Transpose.ROTATE_180)
    image = Image.merge("RGB", (Image.blend(noise, gradient, 0.8), radial, Image.blend(noise, flipped, 0.9)))
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, "PNG", compress_level=1)
    elif fmt == "HEIF":
        _register_heif()
        image.save(buffer, "HEIF", quality=90, enc_params={"preset": "ultrafast"})  # x265: seconds, not a minute
    else:
        image.save(buffer, fmt, quality=90)
    return buffer.getvalue()


# --- the engines: each returns the nine encoded outputs -------------------------------------------------


_active_formats: tuple[str, ...] | None = None


def _formats() -> tuple[str, ...]:
    """The output formats of this measurement (all three; fewer for the memory without AVIF, none for the
    decoding and resizing alone)."""
    if _active_formats is not None:
        return _active_formats
    return tuple(f for f in os.environ.get("BENCH_FORMATS", ",".join(FORMATS)).split(",") if f)


def naive(data: bytes) -> list[bytes]:
    """Open once, resize from full size with LANCZOS for each rendition, encode each format."""
    _register_heif()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        outputs = []
        for spec in SPECS:
            target = imaging.fit_size(image.width, image.height, spec).size
            resized = image.resize(target, Image.Resampling.LANCZOS)
            outputs += [imaging.encode(resized, fmt.upper(), QUALITY) for fmt in _formats()]
        return outputs


def function(data: bytes, engine: str | None = None) -> list[bytes]:
    rendered = imaging.render(data, SPECS, output=list(_formats()), quality=QUALITY, max_pixels=50_000_000,
                              engine=engine)
    return [r.data for r in rendered]


def function_pillow(data: bytes) -> list[bytes]:
    return function(data, "pillow")


def function_libvips(data: bytes) -> list[bytes]:
    return function(data, "libvips")


def _vips() -> Any:
    import pyvips

    pyvips.cache_set_max(0)
    pyvips.concurrency_set(1)
    return pyvips


def _vips_encode(image: Any, fmt: str) -> bytes:
    """The encoder settings of ``imaging._params``: JPEG optimised + progressive, WebP method 4, AVIF speed 8."""
    if fmt == "jpeg":
        return bytes(image.jpegsave_buffer(Q=QUALITY, optimize_coding=True, interlace=True, strip=True))
    if fmt == "webp":
        return bytes(image.webpsave_buffer(Q=QUALITY, effort=4, strip=True))
    # libheif's aom encoder: speed = 9 - effort, so effort 1 is Pillow's speed=8.
    return bytes(image.heifsave_buffer(Q=QUALITY, compression="av1", effort=1, strip=True))


def libvips(data: bytes) -> list[bytes]:
    pyvips = _vips()
    box = SPECS[0].width
    if imaging.sniff(data[:64]) == "HEIF":  # no HEVC decoder in the wheel: libheif's pixels, not copied
        from pillow_heif import open_heif

        heif = open_heif(data, convert_hdr_to_8bit=True)
        bands = len(heif.mode)
        source = pyvips.Image.new_from_memory(heif.data, heif.size[0], heif.size[1], bands, "uchar")
        current = source.thumbnail_image(box, height=box, size="down").copy_memory()
        del source, heif
    else:
        current = pyvips.Image.thumbnail_buffer(data, box, height=box, size="down").copy_memory()
    outputs = []
    for spec in SPECS:
        if current.width > spec.width or current.height > spec.height:
            current = current.thumbnail_image(spec.width, height=spec.height, size="down").copy_memory()
        outputs += [_vips_encode(current, fmt) for fmt in _formats()]
    return outputs


ENGINE_FUNCS: dict[str, Callable[[bytes], list[bytes]]] = {
    "function_pillow": function_pillow, "function_libvips": function_libvips, "libvips": libvips, "naive": naive,
}


# --- memory: a fresh child process per measurement -------------------------------------------------------


def _proc_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _measure_here(engine: str, path: str) -> None:
    """Child process: load the libraries and the source, reset the peak, render, print the peak's rise."""
    data = Path(path).read_bytes()
    func = ENGINE_FUNCS[engine]
    _register_heif()
    _vips()
    fmt = imaging.sniff(data[:imaging.SNIFF_BYTES]) or "PNG"
    func(make_source(fmt, (64, 48)))  # code pages of the libraries and codecs are loaded now, not counted
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        print("null")
        return
    before = _proc_kib("VmRSS")
    func(data)
    peak = _proc_kib("VmHWM")
    print("null" if before is None or peak is None else max(0, peak - before) * 1024)


def peak_growth(engine: str, data: bytes, formats: tuple[str, ...] = FORMATS) -> int | None:
    """Bytes the peak RSS of a fresh process rose while ``engine`` rendered ``data`` (median of children)."""
    values = []
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        for _ in range(MEMORY_REPEATS):
            result = subprocess.run(
                [sys.executable, __file__, "--measure", engine, handle.name],
                capture_output=True, text=True, check=True, env={**os.environ, "BENCH_FORMATS": ",".join(formats)},
            )
            value = json.loads(result.stdout.strip().splitlines()[-1])
            if value is None:
                return None
            values.append(int(value))
    return int(statistics.median(values))


# --- time: interleaved medians -----------------------------------------------------------------------------


def median_times(data: bytes, engines: tuple[str, ...] = ENGINES, repeats: int = REPEATS,
                 formats: tuple[str, ...] = FORMATS) -> dict[str, float]:
    """Median seconds per engine; each round runs every engine once, the order rotated between rounds."""
    global _active_formats
    _active_formats = formats
    try:
        return _median_times(data, engines, repeats)
    finally:
        _active_formats = None


def _median_times(data: bytes, engines: tuple[str, ...], repeats: int) -> dict[str, float]:
    for engine in engines:
        ENGINE_FUNCS[engine](data)  # warm up: imports, codec initialisation
    times: dict[str, list[float]] = {engine: [] for engine in engines}
    for round_ in range(repeats):
        order = engines[round_ % len(engines):] + engines[:round_ % len(engines)]
        for engine in order:
            gc.collect()
            start = time.perf_counter()
            ENGINE_FUNCS[engine](data)
            times[engine].append(time.perf_counter() - start)
    return {engine: statistics.median(values) for engine, values in times.items()}


def _ratio(a: float | int | None, b: float | int | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def measure(fmt: str, size: tuple[int, int]) -> dict[str, Any]:
    data = make_source(fmt, size)
    decoded = size[0] * size[1] * 3
    engines = ENGINES
    chosen = "function_libvips" if fmt in imaging.VIPS_FORMATS else "function_pillow"
    peaks = {engine: peak_growth(engine, data) for engine in engines}
    # libaom's AVIF encoder alone needs ~80 MB for a 2048 px rendition: the peak without AVIF outputs too.
    no_avif = tuple(f for f in FORMATS if f != "avif")
    peaks_no_avif = {engine: peak_growth(engine, data, no_avif) for engine in engines}
    seconds = median_times(data, engines)
    # Decoding and resizing alone (no output format): the part the engines differ in; the encoders are
    # the same in both engines of the function and take most of the time above.
    stage = median_times(data, engines, STAGE_REPEATS, formats=())
    result: dict[str, Any] = {
        "source_bytes": len(data),
        "decoded_bytes": decoded,
        "function_engine": chosen.removeprefix("function_"),
        "median_s": {engine: round(value, 3) for engine, value in seconds.items()},
        "function_vs_libvips": _ratio(seconds[chosen], seconds["libvips"]),
        "function_vs_naive": _ratio(seconds[chosen], seconds["naive"]),
        "decode_resize_median_s": {engine: round(value, 3) for engine, value in stage.items()},
        "decode_resize_pillow_vs_libvips_engine": _ratio(stage["function_pillow"], stage["function_libvips"]),
        "decode_resize_function_vs_libvips": _ratio(stage[chosen], stage["libvips"]),
    }
    for engine in engines:
        if engine.startswith("function_") and engine != chosen:
            result[f"{engine}_vs_libvips"] = _ratio(seconds[engine], seconds["libvips"])
    result["peak_vs_decoded"] = {engine: _ratio(peak, decoded) for engine, peak in peaks.items()}
    result[f"peak_vs_decoded_{'_'.join(no_avif)}_only"] = {
        engine: _ratio(peak, decoded) for engine, peak in peaks_no_avif.items()}
    result["function_peak_vs_decoded"] = result["peak_vs_decoded"][chosen]
    result["peak_rss_growth_bytes"] = peaks
    return result


def run() -> dict[str, Any]:
    """The figures per source: median time of each engine, the ratios, peak RSS growth vs the decoded size."""
    import pyvips

    setup = (f"3 renditions (2048/1024/256 px box) x {', '.join(FORMATS)} at quality {QUALITY}; median of "
             f"{REPEATS} interleaved runs ({STAGE_REPEATS} for decoding and resizing alone); peak RSS growth of "
             f"fresh processes (median of {MEMORY_REPEATS}); Pillow {Image.__version__}, libvips "
             f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)} (pyvips {pyvips.__version__}, 1 thread); "
             "a shared, noisy machine: read the ratios")
    results: dict[str, Any] = {"setup": setup}
    for name, (fmt, size) in SOURCES.items():
        print(f"   image_resize: {name}", flush=True)
        results[name] = measure(fmt, size)
    sources = [results[name] for name in SOURCES]
    results["targets"] = {
        f"function <= {TARGET_VS_LIBVIPS}x libvips on every source":
            all((r["function_vs_libvips"] or 99) <= TARGET_VS_LIBVIPS for r in sources),
        f"function peak < {TARGET_PEAK_VS_DECODED}x decoded on every source":
            all((r["function_peak_vs_decoded"] or 99) < TARGET_PEAK_VS_DECODED for r in sources),
    }
    return results


def main() -> None:
    results = run()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        _measure_here(sys.argv[2], sys.argv[3])
    else:
        main()
