"""Label spaces and class schemes.

A *label space* is how a dataset numbers its classes: id 0 is unlabelled, ids 1..K are
named classes (``nyu894`` raw, ``nyu40``, ``nyu13``). A *class scheme* is what a model is
trained on: a list of classes, each a set of class names of one label space, plus a void
policy for unlabelled pixels (``class``: a trained class of its own, the paper's "other";
``ignore``: the label ``IGNORE_INDEX``, skipped by loss and metrics).

A scheme compiles, for any source space that maps into its own, to a lookup table
``lut`` with ``lut[label_id] -> train id``, applied to a whole uint16 label image in one
indexing operation. The same mechanism collapses predictions of a finer scheme into a
coarser one (``collapse_table``).
"""

from __future__ import annotations

import colorsys
import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from indoorseg.errors import SchemeError

IGNORE_INDEX = 255  # label of ignored pixels for schemes of at most 255 classes
WIDE_IGNORE_INDEX = 65535  # ... and for wider ones (nyu894)
UNLABELLED = 0
VOID_POLICIES = ("class", "ignore")


@dataclass(frozen=True)
class LabelSpace:
    """A numbering of classes: id 0 is unlabelled, id i (1-based) is ``names[i - 1]``.

    Attributes:
        name: e.g. ``nyu40``.
        names: class names, in id order starting at id 1.
        to: tables into other spaces: ``to["nyu40"][i - 1]`` is the nyu40 id of class i.
    """

    name: str
    names: tuple[str, ...]
    to: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @property
    def num_ids(self) -> int:
        """Number of ids including 0 (unlabelled)."""
        return len(self.names) + 1

    def id_of(self, name: str) -> int:
        """The id of a class name; an unknown name raises with the closest names."""
        try:
            return self.names.index(name) + 1
        except ValueError:
            close = difflib.get_close_matches(name, self.names, n=5, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise SchemeError(f"unknown class {name!r} in label space {self.name}{hint}") from None

    def table_to(self, target: str, spaces: dict[str, LabelSpace]) -> np.ndarray:
        """Lookup table (length ``num_ids``) from this space's ids to ``target``'s ids.

        Follows a chain of tables (nyu894 -> nyu40 -> nyu13). Unlabelled stays 0.
        """
        if target == self.name:
            return np.arange(self.num_ids, dtype=np.int64)
        for via, table in self.to.items():
            full = np.concatenate([[UNLABELLED], np.asarray(table, dtype=np.int64)])
            if via == target:
                return full
            if via in spaces:
                try:
                    return spaces[via].table_to(target, spaces)[full]
                except SchemeError:
                    continue
        raise SchemeError(f"label space {self.name} has no mapping to {target}")


def _builtin_spaces() -> dict[str, LabelSpace]:
    text = resources.files("indoorseg.schemes").joinpath("spaces.yaml").read_text()
    raw = yaml.safe_load(text)
    return {
        name: LabelSpace(
            name=name,
            names=tuple(spec["names"]),
            to={k: np.asarray(v, dtype=np.int64) for k, v in spec.get("to", {}).items()},
        )
        for name, spec in raw.items()
    }


BUILTIN_SPACES: dict[str, LabelSpace] = _builtin_spaces()


def nyu894_space(names: list[str], to_nyu40: list[int] | np.ndarray) -> LabelSpace:
    """The raw NYU Depth v2 space, from the dataset's names and its 894 -> 40 table."""
    to_nyu40 = np.asarray(to_nyu40, dtype=np.int64)
    if len(names) != len(to_nyu40):
        raise SchemeError(f"nyu894: {len(names)} names but {len(to_nyu40)} entries in the table")
    return LabelSpace("nyu894", tuple(names), {"nyu40": to_nyu40})


def palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` distinct display colours (golden-angle hues), deterministic."""
    colors = []
    for i in range(n):
        h = (i * 0.618033988749895) % 1.0
        s = 0.55 + 0.35 * ((i // 7) % 2)
        v = 0.95 - 0.25 * ((i // 3) % 2)
        r, g, b = colorsys.hsv_to_rgb(h, s, v)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return colors


@dataclass(frozen=True)
class SchemeClass:
    """One trained class: its name, member class names (``None`` = the rest) and colour."""

    name: str
    members: tuple[str, ...] | None
    color: tuple[int, int, int]


@dataclass(frozen=True)
class Scheme:
    """A class scheme over a label space, with a void policy.

    With ``void == "class"`` the unlabelled pixels form the last class (``void_name``), so
    the ids of the other classes are the same under both policies.
    """

    name: str
    space: str
    void: str
    classes: tuple[SchemeClass, ...]
    void_name: str = "other"
    void_color: tuple[int, int, int] = (0, 0, 0)
    description: str = ""

    @property
    def class_names(self) -> list[str]:
        names = [c.name for c in self.classes]
        return names + [self.void_name] if self.void == "class" else names

    @property
    def colors(self) -> list[tuple[int, int, int]]:
        colors = [c.color for c in self.classes]
        return colors + [self.void_color] if self.void == "class" else colors

    @property
    def num_classes(self) -> int:
        """Number of model outputs."""
        return len(self.class_names)

    @property
    def ignore_index(self) -> int:
        """Label of ignored pixels: ``IGNORE_INDEX`` (255), or 65535 past 255 classes."""
        return IGNORE_INDEX if self.num_classes < IGNORE_INDEX else WIDE_IGNORE_INDEX

    @property
    def label_dtype(self) -> type:
        """Smallest dtype holding every train id and the ignore label."""
        return np.uint8 if self.ignore_index == IGNORE_INDEX else np.uint16

    @property
    def void_id(self) -> int:
        """Train id of unlabelled pixels: the void class, or ``ignore_index``."""
        return len(self.classes) if self.void == "class" else self.ignore_index

    def lut(self, source: LabelSpace, spaces: dict[str, LabelSpace] | None = None) -> np.ndarray:
        """Lookup table [source.num_ids] of ``label_dtype``: source label id -> train id.

        Raises:
            SchemeError: the source space does not map into the scheme's space, or a member
                name is unknown, or a class is claimed twice.
        """
        spaces = {**BUILTIN_SPACES, source.name: source, **(spaces or {})}
        if self.space not in spaces:
            raise SchemeError(f"scheme {self.name}: unknown label space {self.space!r}")
        own = spaces[self.space]
        to_own = source.table_to(self.space, spaces)  # source id -> own id
        own_lut = np.full(own.num_ids, -1, dtype=np.int64)
        own_lut[UNLABELLED] = self.void_id
        rest = None
        for train_id, cls in enumerate(self.classes):
            if cls.members is None:
                rest = train_id
                continue
            for member in cls.members:
                own_id = own.id_of(member)
                if own_lut[own_id] != -1:
                    raise SchemeError(f"scheme {self.name}: class {member!r} is claimed twice")
                own_lut[own_id] = train_id
        unassigned = own_lut == -1
        if unassigned.any():
            if rest is None:
                missing = [own.names[i - 1] for i in np.flatnonzero(unassigned)]
                raise SchemeError(
                    f"scheme {self.name}: classes {missing[:5]} belong to no class; "
                    "add them or use 'members: rest'"
                )
            own_lut[unassigned] = rest
        return own_lut[to_own].astype(self.label_dtype)


def collapse_table(fine: Scheme, coarse: Scheme, source: LabelSpace) -> np.ndarray:
    """Table ``[fine.ignore_index + 1]``: train id of ``fine`` -> train id of ``coarse``.

    Built over a label space both schemes compile from: each fine class must fall in
    exactly one coarse class (nyu40 -> layout3 works; layout3 -> nyu40 does not).
    The fine ignore label maps to the coarse one; so does a fine id never produced.
    """
    fine_lut = fine.lut(source).astype(np.int64)
    coarse_lut = coarse.lut(source).astype(np.int64)
    table = np.full(fine.ignore_index + 1, coarse.ignore_index, dtype=coarse.label_dtype)
    for fine_id in range(fine.num_classes):
        targets = np.unique(coarse_lut[fine_lut == fine_id])
        if len(targets) > 1:
            names = [coarse.class_names[t] if t < coarse.num_classes else "ignore" for t in targets]
            raise SchemeError(
                f"cannot collapse {fine.name} into {coarse.name}: class "
                f"{fine.class_names[fine_id]!r} spans {names}"
            )
        if len(targets) == 1:
            table[fine_id] = targets[0]
    return table


def _parse_color(value, where: str) -> tuple[int, int, int]:
    if not (isinstance(value, list | tuple) and len(value) == 3):
        raise SchemeError(f"{where}: color must be [r, g, b], got {value!r}")
    return tuple(int(c) for c in value)


def scheme_from_dict(raw: dict, where: str = "scheme") -> Scheme:
    """Build a scheme from its YAML form (see ``schemes/layout3.yaml``)."""
    if not isinstance(raw, dict):
        raise SchemeError(f"{where}: expected a mapping")
    known = {"name", "description", "space", "void", "void_name", "void_color", "classes"}
    unknown = set(raw) - known
    if unknown:
        raise SchemeError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    for key in ("name", "space", "void", "classes"):
        if key not in raw:
            raise SchemeError(f"{where}: missing key {key!r}")
    if raw["void"] not in VOID_POLICIES:
        raise SchemeError(f"{where}: void must be one of {VOID_POLICIES}, got {raw['void']!r}")
    if raw["classes"] == "all":
        space = BUILTIN_SPACES.get(raw["space"])
        names = space.names if space else None
        if names is None:  # nyu894: names come with the dataset, filled in by load_scheme
            classes: tuple[SchemeClass, ...] = ()
        else:
            classes = one_class_per_name(names)
    else:
        items = raw["classes"]
        if not isinstance(items, list) or not items:
            raise SchemeError(f"{where}: classes must be a non-empty list or 'all'")
        parsed = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "name" not in item or "members" not in item:
                raise SchemeError(f"{where}: class #{i + 1} needs 'name' and 'members'")
            members = item["members"]
            if members != "rest" and not (isinstance(members, list) and members):
                raise SchemeError(f"{where}: members of {item['name']!r} must be a list or 'rest'")
            color = _parse_color(item.get("color", palette(len(items))[i]), where)
            parsed.append(
                SchemeClass(str(item["name"]), None if members == "rest" else tuple(members), color)
            )
        if sum(c.members is None for c in parsed) > 1:
            raise SchemeError(f"{where}: only one class may take the rest")
        classes = tuple(parsed)
    return Scheme(
        name=str(raw["name"]),
        space=str(raw["space"]),
        void=raw["void"],
        classes=classes,
        void_name=str(raw.get("void_name", "other")),
        void_color=_parse_color(raw.get("void_color", [0, 0, 0]), where),
        description=str(raw.get("description", "")),
    )


def builtin_scheme_names() -> list[str]:
    files = resources.files("indoorseg.schemes").iterdir()
    names = [f.name[: -len(".yaml")] for f in files if f.name.endswith(".yaml")]
    return sorted(n for n in names if n != "spaces")


def one_class_per_name(names: tuple[str, ...]) -> tuple[SchemeClass, ...]:
    """``classes: all``: every class of a space is its own class, in palette colours."""
    return tuple(SchemeClass(n, (n,), c) for n, c in zip(names, palette(len(names)), strict=True))


def read_scheme_dict(name_or_path: str | Path) -> tuple[dict, str]:
    """The YAML form of a built-in scheme or a scheme file, and where it came from."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SchemeError(f"scheme file not found: {path}")
        raw, where = yaml.safe_load(path.read_text()), str(path)
    else:
        names = builtin_scheme_names()
        if str(name_or_path) not in names:
            close = difflib.get_close_matches(str(name_or_path), names, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise SchemeError(
                f"unknown scheme {str(name_or_path)!r}; built in: {', '.join(names)}.{hint}"
            )
        text = resources.files("indoorseg.schemes").joinpath(f"{name_or_path}.yaml").read_text()
        raw, where = yaml.safe_load(text), f"scheme {name_or_path}"
    return raw, where


def load_scheme(name_or_path: str | Path, space: LabelSpace | None = None) -> Scheme:
    """A built-in scheme by name, or a scheme YAML file by path.

    Args:
        name_or_path: ``layout3`` or ``path/to/my_scheme.yaml``.
        space: the dataset's label space; needed to expand ``classes: all`` over nyu894.
    """
    raw, where = read_scheme_dict(name_or_path)
    scheme = scheme_from_dict(raw, where)
    if not scheme.classes:  # classes: all over a space that comes with the dataset
        if space is None or space.name != scheme.space:
            raise SchemeError(
                f"{where}: the {scheme.space} class names come with the dataset; "
                f"use it on a dataset whose label space is {scheme.space}"
            )
        scheme = Scheme(**{**scheme.__dict__, "classes": one_class_per_name(space.names)})
    return scheme


def scheme_to_dict(scheme: Scheme) -> dict:
    """The YAML/JSON form of a scheme (stored in checkpoints)."""
    return {
        "name": scheme.name,
        "description": scheme.description,
        "space": scheme.space,
        "void": scheme.void,
        "void_name": scheme.void_name,
        "void_color": list(scheme.void_color),
        "classes": [
            {
                "name": c.name,
                "members": "rest" if c.members is None else list(c.members),
                "color": list(c.color),
            }
            for c in scheme.classes
        ],
    }


def colorize(train_ids: np.ndarray, scheme: Scheme) -> np.ndarray:
    """RGB image (H, W, 3) uint8 of a train-id map; ignored pixels are black."""
    table = np.zeros((scheme.ignore_index + 1, 3), dtype=np.uint8)
    table[: scheme.num_classes] = np.asarray(scheme.colors, dtype=np.uint8)
    return table[train_ids]


def overlay(
    image: np.ndarray, labels: np.ndarray, scheme: Scheme, alpha: float = 0.55
) -> np.ndarray:
    """The image with the label colours blended in (ignored pixels left as they are)."""
    colours = colorize(labels, scheme).astype(np.float32)
    shown = (labels != scheme.ignore_index)[..., None]
    mixed = np.where(shown, (1 - alpha) * image + alpha * colours, image)
    return mixed.astype(np.uint8)
