"""Training recipes: one dataclass tree filled from YAML, with dotted overrides.

Recipes are files, or names of the built-in ones in ``indoorseg/configs``. Values are
parsed with ``yaml.safe_load`` (never ``eval``); unknown keys are rejected with the nearest
valid key; ``check_config`` refuses values that would only fail later, before any data is
read. The resolved config is written into the run folder and the checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from indoorseg.errors import ConfigError
from indoorseg.models import parse_name


@dataclass
class ModelConfig:
    name: str = "deeplabv3plus_resnet50"
    output_stride: int = 16
    encoder_weights: str = "none"  # none | imagenet | path to a state dict
    input_scale: float = 1.0  # the network sees images scaled by this (real-time models)
    # how predict and evaluate run the model unless told otherwise: images scaled down to
    # this longer side for the network (0: their own size, up to 1280), and the region vote
    inference_side: int = 0
    inference_regions: bool = False


@dataclass
class DataConfig:
    scheme: str = "layout3"
    split_set: str | None = None  # None: the dataset's default (official / default)
    train_split: str = "train"
    val_split: str = "val"
    crop: list[int] = field(default_factory=lambda: [256, 256])
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    flip: bool = True
    color: float = 0.0  # strength of photometric changes in training (0: none)
    batch_size: int = 8
    workers: int = 2


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    scheduler: str = "none"  # none | poly
    epochs: int = 50
    encoder_lr_scale: float = 1.0  # the encoder's learning rate is lr times this (0: frozen)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 on CUDA) | off | bf16 | fp16
    channels_last: str = "auto"  # auto (on CUDA) | on | off
    val_every: int = 1
    deterministic: bool = False
    sync_bn: bool = False  # under torchrun: batch norm statistics over all processes


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else f" Valid: {', '.join(valid)}."


def _coerce(value, hint, where: str):
    """Check/convert a YAML value against a field's type annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value) if hint is float else value
            if hint is int and not (isinstance(value, int) or float(value).is_integer()):
                raise ValueError
            return hint(number)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}") from None
    if hint is str:
        if value is None or isinstance(value, dict | list):  # null must not become "None"
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _fill(cls, raw: dict, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}.{_suggest(key, names)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _fill(hint, value or {}, f"{where}.{key}" if where else key)
        else:
            kwargs[key] = _coerce(value, hint, f"{where}.{key}" if where else key)
    return cls(**kwargs)


def config_from_dict(raw: dict, where: str = "config") -> Config:
    return _fill(Config, raw or {}, where)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a raw config dict."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in (raw or {}).items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=3e-4")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2:
            raise ConfigError(f"override {item!r}: key must be section.name, e.g. optim.lr")
        section, name = parts
        sections = [f.name for f in dataclasses.fields(Config)]
        if section not in sections:
            raise ConfigError(
                f"override {item!r}: unknown section {section!r}.{_suggest(section, sections)}"
            )
        section_cls = typing.get_type_hints(Config)[section]
        fields = [f.name for f in dataclasses.fields(section_cls)]
        if name not in fields:
            raise ConfigError(f"override {item!r}: unknown key {name!r}.{_suggest(name, fields)}")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"override {item!r}: not a YAML value ({yaml_problem(err)})"
            ) from None
        _coerce(value, typing.get_type_hints(section_cls)[name], f"override {item!r}")
        if raw.get(section) is None:  # absent, or an empty section in the YAML
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ConfigError(f"override {item!r}: section {section!r} is not a mapping")
        raw[section][name] = value
    return raw


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: the problem and where it is."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML recipe (or the defaults when ``path`` is None) and apply overrides."""
    raw: dict = {}
    where = "config"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({yaml_problem(err)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {raw!r}")
        where = str(path)
    return config_from_dict(apply_overrides(raw, overrides or []), where)


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def recipe_names() -> list[str]:
    """The built-in recipes (``paper``, ``nyu40``...)."""
    files = resources.files("indoorseg.configs").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """A recipe file: a path, or the name of a built-in recipe."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"recipe not found: {path}")
        return path
    if str(name_or_path) not in recipe_names():
        raise ConfigError(
            f"unknown recipe {str(name_or_path)!r}; built in: {', '.join(recipe_names())}"
        )
    return Path(str(resources.files("indoorseg.configs").joinpath(f"{name_or_path}.yaml")))


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> Config:
    """A built-in recipe by name, or a recipe file, with ``section.key=value`` overrides."""
    return load_config(recipe_path(name_or_path), overrides)


def check_config(config: Config) -> None:
    """Fail on what would only break later, before any data is read or model built."""
    parse_name(config.model.name)
    if not 0 < config.model.input_scale <= 1:
        raise ConfigError(f"model.input_scale must be in (0, 1], got {config.model.input_scale}")
    if config.model.inference_side and config.model.inference_side < 32:
        raise ConfigError(
            f"model.inference_side must be 0 or at least 32, got {config.model.inference_side}"
        )
    d = config.data
    if len(d.crop) != 2 or any(c <= 0 or c % 16 for c in d.crop):
        raise ConfigError(f"data.crop must be [height, width], multiples of 16; got {d.crop}")
    if len(d.scale) != 2 or not 0 < d.scale[0] <= d.scale[1]:
        raise ConfigError(f"data.scale must be [min, max] with 0 < min <= max; got {d.scale}")
    if not 0 <= d.color <= 1:
        raise ConfigError(f"data.color must be in [0, 1], got {d.color}")
    if d.batch_size < 2:
        raise ConfigError("data.batch_size must be at least 2 (batch norm needs 2 samples)")
    if d.workers < 0:
        raise ConfigError(
            f"data.workers must be 0 (load in the main process) or more, got {d.workers}"
        )
    o = config.optim
    if o.epochs < 1:
        raise ConfigError(f"optim.epochs must be at least 1, got {o.epochs}")
    if not 0 < o.lr <= 10:
        raise ConfigError(f"optim.lr must be in (0, 10], got {o.lr}")
    if o.weight_decay < 0 or not 0 <= o.momentum < 1:
        raise ConfigError(
            f"optim.weight_decay must be >= 0 and optim.momentum in [0, 1); got "
            f"{o.weight_decay} and {o.momentum}"
        )
    if not 0 <= o.encoder_lr_scale <= 10:
        raise ConfigError(f"optim.encoder_lr_scale must be in [0, 10], got {o.encoder_lr_scale}")
    if config.train.seed < 0:
        raise ConfigError(f"train.seed must be 0 or more, got {config.train.seed}")
    if config.train.val_every < 1:
        raise ConfigError(f"train.val_every must be at least 1, got {config.train.val_every}")
