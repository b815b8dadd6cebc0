"""Recipes: defaults, YAML files, dotted overrides, and the errors for bad keys and values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from indoorseg.classes import builtin_scheme_names
from indoorseg.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
)
from indoorseg.models import model_names

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_defaults():
    config = load_config(None)
    assert config == Config()
    assert config.model.name == "deeplabv3plus_resnet50"
    assert config.model.encoder_weights == "none"
    assert config.data.scheme == "layout3"
    assert config.data.split_set is None
    assert config.data.crop == [256, 256]
    assert config.optim.lr == 1e-4
    assert config.train.seed == 0


def test_recipes_are_found():
    assert {p.stem for p in RECIPES} >= {"paper", "nyu40", "layout3-ignore", "synthetic-demo"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads(path):
    config = load_config(path)
    raw = yaml.safe_load(path.read_text())
    assert config.model.name == raw["model"]["name"]
    assert config.model.name in model_names()
    assert config.data.scheme in builtin_scheme_names()
    assert isinstance(config.optim.lr, float)
    assert config.optim.lr == float(raw["optim"]["lr"])
    assert all(isinstance(v, int) for v in config.data.crop)
    assert all(isinstance(v, float) for v in config.data.scale)


def test_paper_recipe_values():
    config = load_config(next(p for p in RECIPES if p.stem == "paper"))
    assert config.data.scheme == "layout3"
    assert config.data.split_set == "paper"
    assert config.data.crop == [256, 256]
    assert config.optim.lr == pytest.approx(1e-4)


def test_dumped_config_loads_back_equal(tmp_path):
    config = load_config(None, ["optim.lr=3e-4", "data.split_set=official", "data.flip=false"])
    assert load_config(write(tmp_path, dump_config(config))) == config


# --- overrides --------------------------------------------------------------------------


def test_lr_override_in_e_notation_is_a_float():
    assert yaml.safe_load("3e-4") == "3e-4"  # YAML 1.1 reads it as a string...
    config = load_config(None, ["optim.lr=3e-4"])
    assert isinstance(config.optim.lr, float)  # ... and the config coerces it
    assert config.optim.lr == 0.0003


def test_list_null_and_bool_overrides():
    paper = next(p for p in RECIPES if p.stem == "paper")
    config = load_config(
        paper,
        ["data.crop=[128,128]", "data.split_set=null", "data.flip=false", "data.scale=[1, 2]"],
    )
    assert config.data.crop == [128, 128]
    assert config.data.split_set is None  # was "paper" in the recipe
    assert config.data.flip is False
    assert config.data.scale == [1.0, 2.0]
    assert all(isinstance(v, float) for v in config.data.scale)


def test_overrides_win_over_the_recipe_and_later_overrides_win(tmp_path):
    path = write(tmp_path, "optim:\n  epochs: 10\n  lr: 0.1\n")
    config = load_config(path, ["optim.epochs=3", "optim.epochs=4"])
    assert config.optim.epochs == 4
    assert config.optim.lr == 0.1


def test_override_of_an_empty_section(tmp_path):
    # "data:" with nothing under it is None in YAML
    path = write(tmp_path, "data:\noptim:\n  lr: 0.1\n")
    config = load_config(path, ["data.crop=[64, 64]"])
    assert config.data.crop == [64, 64]
    assert config.data.batch_size == 8


def test_apply_overrides_leaves_the_input_alone():
    raw = {"optim": {"lr": 0.1}}
    out = apply_overrides(raw, ["optim.lr=0.2"])
    assert raw == {"optim": {"lr": 0.1}}
    assert out == {"optim": {"lr": 0.2}}


# --- unknown keys -----------------------------------------------------------------------


def test_unknown_key_in_yaml_suggests(tmp_path):
    path = write(tmp_path, "optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match="Did you mean 'lr'") as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "lrr" in str(info.value)


def test_unknown_section_in_yaml_suggests(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'optim'"):
        load_config(write(tmp_path, "optimizer:\n  lr: 0.1\n"))


def test_unknown_key_in_override_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'batch_size'") as info:
        load_config(None, ["data.batchsize=4"])
    assert "data.batchsize=4" in str(info.value)


def test_unknown_section_in_override_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'optim'"):
        load_config(None, ["optm.lr=0.1"])


@pytest.mark.parametrize("item", ["optim.lr", "lr=0.1", "optim.lr.x=1"])
def test_malformed_override(item):
    with pytest.raises(ConfigError, match="override"):
        load_config(None, [item])


# --- wrong types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("optim.epochs=abc", "expected int"),
        ("optim.epochs=2.5", "expected int"),
        ("optim.epochs=true", "expected a number"),
        ("optim.lr=fast", "expected float"),
        ("data.flip=3", "expected true or false"),
        ("data.flip=yes please", "expected true or false"),
        ("data.crop=128", "expected a list"),
        ("data.crop=[128, x]", "expected int"),
        ("model.name=[a, b]", "expected a string"),
        ("model.encoder_weights=null", "expected a string"),
    ],
)
def test_wrong_type_is_refused(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, [item])
    assert item.split("=")[0] in str(info.value)


def test_wrong_type_in_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "optim:\n  epochs: abc\n")
    with pytest.raises(ConfigError, match="optim.epochs: expected int") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_a_section_that_is_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        config_from_dict({"optim": 3})
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- optim\n- data\n"))


def test_missing_recipe(tmp_path):
    with pytest.raises(ConfigError, match="recipe not found"):
        load_config(tmp_path / "nope.yaml")


# --- no code from YAML ------------------------------------------------------------------


def test_python_tags_in_an_override_are_refused_without_running(tmp_path):
    marker = tmp_path / "made-by-yaml"
    payload = f'!!python/object/apply:os.mkdir ["{marker}"]'
    with pytest.raises(ConfigError, match="not a YAML value"):
        load_config(None, [f"model.name={payload}"])
    with pytest.raises(ConfigError, match="not a YAML value"):
        load_config(None, ['model.name=!!python/object/apply:os.system ["echo hi"]'])
    assert not marker.exists()
    # the payload is real: an unsafe loader would have run it
    yaml.unsafe_load(payload)
    assert marker.is_dir()


def test_python_tags_in_a_recipe_are_refused_without_running(tmp_path):
    marker = tmp_path / "made-by-yaml"
    path = write(tmp_path, f'model:\n  name: !!python/object/apply:os.mkdir ["{marker}"]\n')
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    assert not marker.exists()
