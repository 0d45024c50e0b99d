"""Config: precedence, strict keys with close matches, range checks, every bundled recipe loads."""

from pathlib import Path

import pytest

from gansynth.config import Config, build_config, find_recipe, load_recipe, parse_override
from gansynth.errors import ConfigError
from gansynth.registry import Registry

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.toml"))


def test_precedence_defaults_recipe_options_set():
    config = build_config("digits", {"train.kimg": 7.0, "train.batch_size": None}, ["train.kimg=9", "model.arch=dcgan"])
    recipe = load_recipe("digits")
    assert config.train.kimg == 9.0  # --set beats the option
    assert config.model.arch == "dcgan"  # --set beats the recipe
    assert config.train.batch_size == recipe["train"]["batch_size"]  # None option leaves the recipe value
    assert config.train.loss == recipe["train"].get("loss", Config().train.loss)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("train.glr=1e-4", "train.g_lr"),
        ("trian.kimg=1", "train"),
        ("model.archh=mlp", "model.arch"),
    ],
)
def test_unknown_keys_name_the_closest_match(text, fragment):
    with pytest.raises(ConfigError) as info:
        build_config(overrides=[text])
    assert fragment in info.value.hint


@pytest.mark.parametrize(
    "text",
    [
        "train.kimg=0",
        "train.batch_size=0",
        "data.resolution=48",
        "augment.p=2",
        "train.g_betas=[0.5]",
        "train.kimg='x'",
        "runtime.device=tpu",
    ],
)
def test_out_of_range_values_name_the_key(text):
    with pytest.raises(ConfigError) as info:
        build_config(overrides=[text])
    assert text.split("=")[0] in str(info.value)


def test_override_values_are_typed():
    assert parse_override("train.g_betas=[0.5, 0.9]") == {"train": {"g_betas": [0.5, 0.9]}}
    assert parse_override("model.arch=dcgan") == {"model": {"arch": "dcgan"}}
    config = build_config(overrides=["train.g_betas=[0.5, 0.9]", "augment.enabled=true", "train.kimg=3"])
    assert config.train.g_betas == (0.5, 0.9) and config.augment.enabled is True and config.train.kimg == 3.0
    with pytest.raises(ConfigError):
        parse_override("no_equals_sign")


def test_config_roundtrips_through_dict():
    config = build_config("digits")
    assert Config.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads_and_validates(recipe):
    from gansynth.train.fit import validate_names

    config = build_config(recipe)
    validate_names(config)
    assert find_recipe(recipe.stem) == recipe.resolve() or find_recipe(recipe.stem).name == recipe.name


def test_unknown_recipe_suggests_bundled_ones():
    with pytest.raises(ConfigError) as info:
        find_recipe("digit")
    assert "digits" in info.value.hint


def test_a_folder_named_like_a_recipe_does_not_hide_it(tmp_path, monkeypatch):
    """``gansynth fit ... --recipe digits`` run where a ``digits/`` folder exists (a benchmark's output, say)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    assert find_recipe("digits").name == "digits.toml" and find_recipe("digits").parent != tmp_path
    (tmp_path / "mine.toml").mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        find_recipe("mine.toml")


def test_registry_rejects_duplicates_and_suggests():
    registry = Registry("thing")
    registry.add("alpha", 1)
    with pytest.raises(ValueError):
        registry.add("alpha", 2)
    with pytest.raises(ConfigError) as info:
        registry.get("alpa")
    assert "alpha" in info.value.hint and registry.get("alpha") == 1


def test_every_subpackage_and_the_recipes_are_installed():
    """pyproject lists packages by hand (recipes/ installs as gansynth.recipes): a new subpackage must be added."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "gansynth").rglob("__init__.py")}
    assert listed == found | {"gansynth.recipes"}
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert data["package-dir"]["gansynth.recipes"] == "recipes" and data["package-data"]["gansynth.recipes"] == [
        "*.toml"
    ]
