import numpy as np
import pytest
import scipy.io as sio
import torch
import yaml

from indoorseg.classes import (
    BUILTIN_SPACES,
    IGNORE_INDEX,
    LabelSpace,
    Scheme,
    SchemeError,
    builtin_scheme_names,
    collapse_table,
    colorize,
    load_scheme,
    nyu894_space,
    one_class_per_name,
    scheme_from_dict,
)
from indoorseg.metrics import ConfusionMatrix

from conftest import shared_nyu

NYU40 = BUILTIN_SPACES["nyu40"]


def test_builtin_schemes_are_listed():
    assert {"layout3", "layout3-ignore", "nyu40", "nyu13", "nyu894"} <= set(builtin_scheme_names())


def test_layout3_lut_over_nyu40():
    scheme = load_scheme("layout3")
    lut = scheme.lut(NYU40)
    assert scheme.class_names == ["background", "object", "other"]
    assert lut[0] == 2  # unlabelled -> other
    for name in ("wall", "floor", "ceiling"):
        assert lut[NYU40.id_of(name)] == 0
    others = [NYU40.id_of(n) for n in NYU40.names if n not in ("wall", "floor", "ceiling")]
    assert (lut[others] == 1).all() and len(others) == 37


def test_void_policies_keep_ids():
    ignore = load_scheme("layout3-ignore")
    lut = ignore.lut(NYU40)
    assert ignore.num_classes == 2 and lut[0] == IGNORE_INDEX
    assert (lut[1:] == load_scheme("layout3").lut(NYU40)[1:]).all()


def test_lut_applies_to_a_label_image_in_one_step():
    label = np.array([[0, 1, 2], [22, 5, 40]], dtype=np.uint16)
    assert load_scheme("layout3").lut(NYU40)[label].tolist() == [[2, 0, 0], [0, 1, 1]]


def test_nyu13_goes_through_the_40_to_13_table():
    scheme = load_scheme("nyu13")
    lut = scheme.lut(NYU40)
    assert scheme.class_names[lut[NYU40.id_of("wall")]] == "wall"
    assert scheme.class_names[lut[NYU40.id_of("television")]] == "tv"
    assert scheme.class_names[lut[NYU40.id_of("night stand")]] == "furniture"


def test_unknown_class_name_lists_closest():
    raw = {
        "name": "x",
        "space": "nyu40",
        "void": "ignore",
        "classes": [{"name": "a", "members": ["wal"]}, {"name": "b", "members": "rest"}],
    }
    with pytest.raises(SchemeError, match="closest: wall"):
        scheme_from_dict(raw).lut(NYU40)


def test_unknown_scheme_suggests():
    with pytest.raises(SchemeError, match="Did you mean layout3"):
        load_scheme("layot3")


def test_scheme_errors():
    base = {"name": "x", "space": "nyu40", "void": "ignore"}
    with pytest.raises(SchemeError, match="void must be"):
        scheme_from_dict({**base, "void": "maybe", "classes": "all"})
    with pytest.raises(SchemeError, match="claimed twice"):
        scheme_from_dict(
            {
                **base,
                "classes": [
                    {"name": "a", "members": ["wall"]},
                    {"name": "b", "members": ["wall", "floor"]},
                ],
            }
        ).lut(NYU40)
    with pytest.raises(SchemeError, match="belong to no class"):
        scheme_from_dict({**base, "classes": [{"name": "a", "members": ["wall"]}]}).lut(NYU40)
    with pytest.raises(SchemeError, match="unknown keys"):
        scheme_from_dict({**base, "classes": "all", "colour": 1})


def test_user_scheme_file(tmp_path):
    path = tmp_path / "furniture.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "furniture",
                "space": "nyu40",
                "void": "class",
                "classes": [
                    {"name": "seat", "members": ["chair", "sofa"], "color": [1, 2, 3]},
                    {"name": "rest", "members": "rest"},
                ],
            }
        )
    )
    scheme = load_scheme(path)
    lut = scheme.lut(NYU40)
    assert lut[NYU40.id_of("sofa")] == 0 and lut[NYU40.id_of("wall")] == 1 and lut[0] == 2
    assert scheme.colors[0] == (1, 2, 3)


def test_collapse_nyu40_to_layout3():
    table = collapse_table(load_scheme("nyu40"), load_scheme("layout3"), NYU40)
    assert table[0] == 0 and table[1] == 0 and table[21] == 0  # wall, floor, ceiling
    assert table[4] == 1 and table[39] == 1
    assert table[IGNORE_INDEX] == IGNORE_INDEX
    with pytest.raises(SchemeError, match="spans"):
        collapse_table(load_scheme("layout3"), load_scheme("nyu40"), NYU40)


def test_colorize_uses_scheme_colours():
    scheme = load_scheme("layout3")
    image = colorize(np.array([[0, 1, 2, IGNORE_INDEX]], dtype=np.uint8), scheme)
    assert image.shape == (1, 4, 3)
    assert tuple(image[0, 0]) == scheme.colors[0] and tuple(image[0, 3]) == (0, 0, 0)


def test_real_metadata_agrees_with_builtin_spaces():
    meta = shared_nyu("meta")
    m = sio.loadmat(meta / "classMapping40.mat")
    assert tuple(str(x[0]) for x in m["className"][0]) == NYU40.names
    c = sio.loadmat(meta / "class13Mapping.mat")["classMapping13"]
    assert (c["labels13"][0, 0].ravel() == NYU40.to["nyu13"]).all()
    raw = nyu894_space([str(x[0]) for x in m["allClassName"][0]], m["mapClass"].ravel())
    scheme = load_scheme("nyu894", raw)
    assert scheme.num_classes == 894 and scheme.ignore_index > 894
    lut = load_scheme("layout3").lut(raw)
    assert [int(i) for i in np.flatnonzero(lut == 0)] == [4, 11, 21]  # ceiling, floor, wall
    wide = collapse_table(scheme, load_scheme("layout3"), raw)
    assert wide[3] == 0 and wide[0] == 1  # raw 4 (ceiling) -> background; raw 1 (book) -> object


# --- ignore labels of wide schemes ------------------------------------------------------


@pytest.mark.parametrize("n", [253, 254, 255, 256, 300])
@pytest.mark.parametrize("void", ["ignore", "class"])
def test_ignore_label_is_never_a_class_id(n, void):
    """The ignore label and the "unscored" id one past the classes (evaluation) must both
    lie outside the class ids: 255 serves up to 254 classes, 65535 past that."""
    named = n - (void == "class")
    space = LabelSpace("wide", tuple(f"class{i}" for i in range(1, named + 1)))
    scheme = Scheme("wide", "wide", void, one_class_per_name(space.names))
    assert scheme.num_classes == n
    assert scheme.ignore_index > scheme.num_classes  # room for the unscored id n
    assert scheme.ignore_index == (IGNORE_INDEX if n <= 254 else 65535)
    assert np.iinfo(scheme.label_dtype).max >= scheme.ignore_index
    lut = scheme.lut(space)
    assert lut.dtype == scheme.label_dtype
    # every class keeps its own id, unlabelled pixels get the void id, nothing collides
    assert lut[1:].tolist() == list(range(named))
    assert lut[0] == (scheme.ignore_index if void == "ignore" else named)
    # and the last class is counted, not skipped as if it were the ignore label
    confusion = ConfusionMatrix(scheme.num_classes, scheme.ignore_index)
    labels = torch.from_numpy(lut.astype(np.int64))
    confusion.update(labels, labels.clamp(max=n - 1))
    counts = confusion.numpy().diagonal()
    assert counts[n - 1] >= 1 and counts.sum() == named + (void == "class")


# --- collapsing keeps "other" when both schemes score it --------------------------------


def test_collapse_of_a_void_class_scheme_keeps_other():
    layout3 = load_scheme("layout3")
    same = collapse_table(layout3, layout3, NYU40)
    assert same[:3].tolist() == [0, 1, 2]  # background, object, other -> themselves
    seating = scheme_from_dict(
        {
            "name": "seating",
            "space": "nyu40",
            "void": "class",
            "classes": [
                {"name": "seat", "members": ["chair", "sofa", "bed"]},
                {"name": "room", "members": ["wall", "floor", "ceiling"]},
                {"name": "rest", "members": "rest"},
            ],
        }
    )
    table = collapse_table(seating, layout3, NYU40)
    # seat -> object, room -> background, rest -> object, other (void id 3) -> other
    assert table[:4].tolist() == [1, 0, 1, 2]
    assert table[seating.ignore_index] == layout3.ignore_index
