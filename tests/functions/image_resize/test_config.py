"""The settings contract: settings model -> function_environment() -> Config.from_env, one set of parsers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from image_resize.config import FORMAT_MAX_SIDE, MAX_SIDE, OUTPUT_FORMATS, Config, parse_renditions
from shared.config import ConfigError
from stacks.settings import SettingsError, load_settings
from stacks.settings.image_resize import ImageResizeSettings

RESOURCES = {"DEST_BUCKET": "renditions-bucket", "NOTIFY_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:ops"}

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)
segments = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True)
prefixes = st.lists(segments, min_size=1, max_size=3).map(lambda parts: "/".join(parts) + "/")


@st.composite
def valid_settings(draw: st.DrawFn) -> dict[str, Any]:
    output_formats = draw(st.lists(st.sampled_from(OUTPUT_FORMATS), min_size=1, max_size=3, unique=True))
    limit = min([MAX_SIDE, *(FORMAT_MAX_SIDE.get(f, MAX_SIDE) for f in output_formats)])
    side = st.integers(1, limit)
    rendition_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    renditions = [{"name": n, "width": draw(side), "height": draw(side), "fit": draw(st.sampled_from(["contain",
                                                                                                       "cover"]))}
                  for n in rendition_names]
    source_prefix = draw(prefixes)
    dest_prefix = draw(prefixes.filter(lambda p: not p.startswith(source_prefix) and not source_prefix.startswith(p)))
    return {
        "source_prefix": source_prefix,
        "dest_prefix": dest_prefix,
        "renditions": renditions,
        "output_formats": output_formats,
        "metadata": draw(st.sampled_from(["strip", "copyright"])),
        "quality": draw(st.integers(1, 100)),
        "max_pixels": draw(st.integers(1, 10**9)),
        "max_bytes": draw(st.integers(1, 10**10)),
        "delete_renditions": draw(st.booleans()),
    }


@settings(max_examples=60, deadline=None)
@given(values=valid_settings())
def test_any_valid_settings_round_trip_to_the_same_config(values: dict[str, Any]) -> None:
    model = ImageResizeSettings(**values)
    env = {**model.function_environment(), **RESOURCES}
    config = Config.from_env(env)
    assert config.source_prefix == values["source_prefix"]
    assert config.dest_prefix == values["dest_prefix"]
    assert [(r.name, r.width, r.height, r.fit) for r in config.renditions] == [
        (r["name"], r["width"], r["height"], r["fit"]) for r in values["renditions"]]
    assert config.output_formats == tuple(values["output_formats"])
    assert config.metadata == values["metadata"]
    assert (config.quality, config.max_pixels, config.max_bytes) == (
        values["quality"], values["max_pixels"], values["max_bytes"])
    assert config.delete_renditions is values["delete_renditions"]
    assert (config.dest_bucket, config.topic_arn) == (RESOURCES["DEST_BUCKET"], RESOURCES["NOTIFY_TOPIC_ARN"])


def test_the_function_reads_exactly_the_models_variables() -> None:
    env = {**ImageResizeSettings().function_environment(), **RESOURCES}
    Config.from_env(env)
    for name in env:
        with pytest.raises(ConfigError, match=name):
            Config.from_env({k: v for k, v in env.items() if k != name})


def test_an_empty_dest_prefix_is_a_value_not_a_missing_variable() -> None:
    model = ImageResizeSettings(dest_bucket_name="other-bucket", dest_prefix="")
    assert Config.from_env({**model.function_environment(), **RESOURCES}).dest_prefix == ""


def _load(values: dict[str, Any]) -> None:
    load_settings({"automations": {"image_resize": {"enabled": True, **values}}})


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"renditions": [{"name": "../up", "width": 1, "height": 1}]}, "automations.image_resize.renditions.0.name"),
        ({"renditions": [{"name": "a", "width": 0, "height": 1}]}, "automations.image_resize.renditions.0.width"),
        ({"renditions": [{"name": "a", "width": 1, "height": 16385}]}, "automations.image_resize.renditions.0.height"),
        ({"renditions": [{"name": "a", "width": 1, "height": 1}, {"name": "a", "width": 2, "height": 2}]},
         "automations.image_resize.renditions"),
        ({"quality": 0}, "automations.image_resize.quality"),
        ({"max_bytes": 0}, "automations.image_resize.max_bytes"),
        ({"source_prefix": "uploads"}, "automations.image_resize.source_prefix"),
        ({"dest_prefix": "/x/"}, "automations.image_resize.dest_prefix"),
        ({"output_format": "bmp"}, "automations.image_resize.output_format"),
        ({"output_formats": ["webp", "bmp"]}, "automations.image_resize.output_formats.1"),
        ({"output_formats": ["webp", "webp"]}, "automations.image_resize.output_formats"),
        ({"output_formats": []}, "automations.image_resize.output_formats"),
        ({"output_formats": ["webp"], "output_format": "jpeg"}, "automations.image_resize"),
        ({"metadata": "all"}, "automations.image_resize.metadata"),
        ({"kms_key_arn": "alias/photos"}, "automations.image_resize.kms_key_arn"),
        ({"kms_key_arn": "create", "source_bucket_name": "their-photos"}, "automations.image_resize"),
        ({"output_format": "webp", "renditions": [{"name": "a", "width": 16384, "height": 1}]},
         "automations.image_resize"),
        ({"output_formats": ["jpeg", "webp"], "renditions": [{"name": "a", "width": 16384, "height": 1}]},
         "automations.image_resize"),
    ],
)
def test_invalid_settings_fail_with_the_key_path(values: dict[str, Any], path: str) -> None:
    with pytest.raises(SettingsError) as error:
        _load(values)
    assert f"{path}:" in str(error.value)


@pytest.mark.parametrize(
    "override",
    [
        {"DEST_BUCKET": ""},
        {"RENDITIONS": "not json"},
        {"RENDITIONS": '[{"name":"../up","width":1,"height":1}]'},
        {"RENDITIONS": '[{"name":"a","width":16384,"height":1}]', "OUTPUT_FORMATS": "jpeg,webp"},
        {"OUTPUT_FORMATS": "bmp"},
        {"OUTPUT_FORMATS": "webp,webp"},
        {"METADATA": "everything"},
        {"QUALITY": "0"},
        {"QUALITY": "101"},
        {"MAX_PIXELS": "lots"},
        {"SOURCE_PREFIX": "uploads"},
        {"DELETE_RENDITIONS": "maybe"},
    ],
)
def test_config_errors(override: dict[str, str]) -> None:
    env = {**ImageResizeSettings().function_environment(), **RESOURCES}
    with pytest.raises(ConfigError):
        Config.from_env({**env, **override})


def test_parse_renditions_rejects_unsafe_names_and_repeats() -> None:
    assert parse_renditions('[{"name":"t","width":1,"height":2}]')[0].fit == "contain"
    for bad in ('[{"name":"../x","width":1,"height":1}]', '[{"name":"a","width":0,"height":1}]', "[]",
                '[{"name":"a","width":1,"height":1},{"name":"a","width":2,"height":2}]',
                '[{"name":"a","width":1,"height":1,"fit":"stretch"}]', '[{"name":"a","width":true,"height":1}]'):
        with pytest.raises(ValueError):
            parse_renditions(bad)


def test_deprecated_output_format_is_one_of_output_formats() -> None:
    model = ImageResizeSettings(output_format="webp")
    assert model.function_environment()["OUTPUT_FORMATS"] == "webp"
    assert Config.from_env({**model.function_environment(), **RESOURCES}).output_formats == ("webp",)
