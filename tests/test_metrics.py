"""Metrics against hand-computed values on hand-built confusion matrices and label images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from indoorseg.classes import BUILTIN_SPACES, SchemeError, collapse_table, load_scheme
from indoorseg.metrics import (
    ConfusionMatrix,
    PaperScores,
    accuracy_per_class,
    frequency_weighted_iou,
    iou_per_class,
    mean_iou,
    paper_image_scores,
    pixel_accuracy,
    restrict,
    summarize,
)

# rows: ground truth, columns: prediction
#   row sums (GT support):   6, 6, 4   -> 16 pixels
#   column sums (predicted): 7, 4, 5
#   diagonal (TP):           5, 3, 4   -> trace 12
MAT = np.array(
    [
        [5, 1, 0],
        [2, 3, 1],
        [0, 0, 4],
    ]
)

# class 2: never in GT but predicted once; class 3: absent from GT and prediction
#   row sums: 3, 2, 0, 0 -> 5 pixels; column sums: 3, 1, 1, 0
ABSENT = np.array(
    [
        [2, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)


# --- ConfusionMatrix ------------------------------------------------------------------


def test_confusion_matrix_counts_pairs_and_skips_ignore_and_out_of_range():
    cm = ConfusionMatrix(3, ignore_index=255)
    target = torch.tensor([[0, 1, 2, 255], [3, 7, 1, 1]])
    pred = torch.tensor([[0, 2, 2, 1], [0, 0, 1, 0]])
    cm.update(target, pred)
    # kept (true, pred): (0,0) (1,2) (2,2) (1,1) (1,0); 255, 3 and 7 are skipped
    expected = np.array(
        [
            [1, 0, 0],
            [1, 1, 1],
            [0, 0, 1],
        ]
    )
    np.testing.assert_array_equal(cm.numpy(), expected)
    assert cm.mat.dtype == torch.int64


def test_confusion_matrix_ignore_index_inside_the_class_range():
    cm = ConfusionMatrix(3, ignore_index=1)
    cm.update(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 2, 2]))
    # GT 1 is the ignore label here: only (0,0) and (2,2) count
    np.testing.assert_array_equal(cm.numpy(), np.diag([1, 0, 1]))


def test_confusion_matrix_accumulates_over_batches_and_resets():
    cm = ConfusionMatrix(2)
    # batch 1, shape (N, H, W) = (1, 2, 2): (0,0) (0,1) (1,1) (1,1)
    cm.update(torch.tensor([[[0, 0], [1, 1]]]), torch.tensor([[[0, 1], [1, 1]]]))
    # batch 2, shape (H, W) = (1, 3), uint8: (1,0) (0,0) (255 skipped)
    cm.update(torch.tensor([[1, 0, 255]], dtype=torch.uint8), torch.tensor([[0, 0, 1]]))
    np.testing.assert_array_equal(cm.numpy(), [[2, 1], [1, 2]])
    cm.reset()
    assert cm.numpy().sum() == 0


def test_confusion_matrix_agrees_with_a_python_loop():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, size=(2, 9, 11))  # 5 is out of range for 5 classes
    target[0, 0, :4] = 255
    pred = rng.integers(0, 5, size=(2, 9, 11))
    cm = ConfusionMatrix(5)
    cm.update(torch.from_numpy(target), torch.from_numpy(pred))
    expected = np.zeros((5, 5), dtype=np.int64)
    for t, p in zip(target.ravel(), pred.ravel(), strict=True):
        if t < 5:
            expected[t, p] += 1
    np.testing.assert_array_equal(cm.numpy(), expected)


# --- metric functions on hand-built matrices --------------------------------------------


def test_iou_per_class_by_hand():
    # IoU = TP / (row + col - TP)
    #   class 0: 5 / (6 + 7 - 5) = 5/8
    #   class 1: 3 / (6 + 4 - 3) = 3/7
    #   class 2: 4 / (4 + 5 - 4) = 4/5
    np.testing.assert_allclose(iou_per_class(MAT), [5 / 8, 3 / 7, 4 / 5])


def test_accuracy_per_class_by_hand():
    # recall = TP / row: 5/6, 3/6, 4/4
    np.testing.assert_allclose(accuracy_per_class(MAT), [5 / 6, 1 / 2, 1.0])


def test_pixel_accuracy_by_hand():
    # trace / total = 12 / 16
    assert pixel_accuracy(MAT) == pytest.approx(0.75)


def test_mean_iou_by_hand():
    # (5/8 + 3/7 + 4/5) / 3
    assert mean_iou(MAT) == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3)


def test_frequency_weighted_iou_by_hand():
    # sum(row / total * IoU) = (6 * 5/8 + 6 * 3/7 + 4 * 4/5) / 16
    expected = (6 * 5 / 8 + 6 * 3 / 7 + 4 * 4 / 5) / 16
    assert frequency_weighted_iou(MAT) == pytest.approx(expected)
    assert frequency_weighted_iou(MAT) != pytest.approx(mean_iou(MAT))


def test_absent_classes_are_nan_and_left_out_of_the_means():
    # IoU 0: 2 / (3 + 3 - 2) = 1/2; IoU 1: 1 / (2 + 1 - 1) = 1/2
    # IoU 2: 0 / (0 + 1 - 0) = 0 (predicted, never true: counted)
    # IoU 3: 0 / 0 -> NaN (absent from both: not counted)
    ious = iou_per_class(ABSENT)
    np.testing.assert_allclose(ious[:3], [0.5, 0.5, 0.0])
    assert math.isnan(ious[3])
    # mean over classes in GT or prediction: (1/2 + 1/2 + 0) / 3, not / 4
    assert mean_iou(ABSENT) == pytest.approx(1 / 3)
    # recall is NaN for both classes without GT pixels: 2/3, 1/2, NaN, NaN
    accs = accuracy_per_class(ABSENT)
    np.testing.assert_allclose(accs[:2], [2 / 3, 1 / 2])
    assert np.isnan(accs[2:]).all()
    # pixel accuracy 3/5; fw IoU (3 * 1/2 + 2 * 1/2 + 0 + 0) / 5 = 1/2
    assert pixel_accuracy(ABSENT) == pytest.approx(3 / 5)
    assert frequency_weighted_iou(ABSENT) == pytest.approx(0.5)


def test_empty_matrix_gives_nan_not_an_error():
    empty = np.zeros((3, 3), dtype=np.int64)
    assert math.isnan(pixel_accuracy(empty))
    assert math.isnan(mean_iou(empty))
    assert np.isnan(iou_per_class(empty)).all()
    assert frequency_weighted_iou(empty) == 0.0


# --- restrict / summarize: a void class that is not scored ------------------------------

# layout3 with void as a class: background 0, object 1, other 2
VOID = np.array(
    [
        [8, 1, 1],  # background: 10 pixels, 1 predicted as "other"
        [2, 4, 0],  # object: 6 pixels
        [4, 4, 2],  # other (unlabelled): not scored
    ]
)


def test_restrict_drops_void_ground_truth_and_keeps_void_predictions_as_errors():
    out = restrict(VOID, [0, 1])
    # the "other" row is gone; its column becomes the extra "not a scored class" column
    np.testing.assert_array_equal(out, [[8, 1, 1], [2, 4, 0], [0, 0, 0]])


def test_restrict_sums_every_unscored_prediction_into_one_column():
    mat = np.arange(16).reshape(4, 4)
    # scored [1, 3]; rows 1 and 3, columns 1, 3, then 0 + 2
    np.testing.assert_array_equal(
        restrict(mat, [1, 3]), [[5, 7, 4 + 6], [13, 15, 12 + 14], [0, 0, 0]]
    )


def test_summarize_scores_only_the_scored_classes_by_hand():
    s = summarize(VOID, ["background", "object", "other"], scored=[0, 1])
    # restricted matrix [[8, 1, 1], [2, 4, 0], [0, 0, 0]]: 16 pixels, trace 12
    assert s["pixels"] == 16
    # 12 / 16; dropping the void predictions instead would give 12 / 15 = 0.8
    assert s["pixel_accuracy"] == pytest.approx(0.75)
    # background: row 10, column 8 + 2 = 10, TP 8 -> 8 / 12
    # object:     row 6,  column 1 + 4 = 5,  TP 4 -> 4 / 7
    assert s["per_class_iou"] == pytest.approx({"background": 8 / 12, "object": 4 / 7})
    assert "other" not in s["per_class_iou"]
    assert s["mean_iou"] == pytest.approx((8 / 12 + 4 / 7) / 2)
    # recall: 8/10, 4/6
    assert s["mean_class_accuracy"] == pytest.approx((8 / 10 + 4 / 6) / 2)
    # (10 * 8/12 + 6 * 4/7) / 16
    assert s["frequency_weighted_iou"] == pytest.approx((10 * 8 / 12 + 6 * 4 / 7) / 16)


def test_summarize_defaults_to_every_class_and_reports_absent_classes_as_none():
    s = summarize(ABSENT, ["a", "b", "c", "d"])
    assert s["pixel_accuracy"] == pytest.approx(pixel_accuracy(ABSENT))
    assert s["mean_iou"] == pytest.approx(mean_iou(ABSENT))
    assert s["frequency_weighted_iou"] == pytest.approx(frequency_weighted_iou(ABSENT))
    assert s["per_class_iou"] == {"a": 0.5, "b": 0.5, "c": 0.0, "d": None}
    assert s["pixels"] == 5


# --- the paper's protocol ---------------------------------------------------------------


def test_paper_scores_average_iou_over_ground_truth_classes_only():
    target = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    # one class-0 pixel predicted as class 2, which is absent from this image's GT
    hallucinated = np.array([[0, 0, 1, 1], [0, 2, 1, 1]])
    accuracy, iou = paper_image_scores(target, hallucinated)
    # accuracy 7/8; IoU 0: 3 / 4, IoU 1: 4 / 4; class 2 is not averaged in
    assert accuracy == pytest.approx(7 / 8)
    assert iou == pytest.approx((3 / 4 + 1) / 2)
    # the standard protocol counts class 2 with IoU 0: (3/4 + 1 + 0) / 3
    cm = ConfusionMatrix(3)
    cm.update(torch.from_numpy(target), torch.from_numpy(hallucinated))
    assert mean_iou(cm.numpy()) == pytest.approx((3 / 4 + 1 + 0) / 3)
    # the same mistake as a GT class costs more: IoU 0: 3/4, IoU 1: 4/5
    confused = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    accuracy_c, iou_c = paper_image_scores(target, confused)
    assert accuracy_c == pytest.approx(7 / 8)
    assert iou_c == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert iou > iou_c


def test_paper_scores_count_every_label_value_including_unlabelled():
    # 0 is a label like any other here; 255 too (no ignore label in the paper's code)
    target = np.array([[255, 255], [1, 1]])
    pred = np.array([[255, 1], [1, 1]])
    accuracy, iou = paper_image_scores(target, pred)
    # accuracy 3/4; IoU 1: 2 / 3, IoU 255: 1 / 2
    assert accuracy == pytest.approx(3 / 4)
    assert iou == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_paper_scores_average_over_images_not_pixels():
    scores = PaperScores()
    # image 1, 4 pixels, all right: accuracy 1, IoU 1
    scores.update(np.zeros((2, 2), int), np.zeros((2, 2), int))
    # image 2, 16 pixels, GT all 0, half predicted as 1: accuracy 1/2, IoU 0: 8 / 16
    pred = np.zeros((4, 4), int)
    pred[:2] = 1
    scores.update(np.zeros((4, 4), int), pred)
    summary = scores.summary()
    assert summary["images"] == 2
    # mean over images (1 + 1/2) / 2 = 0.75; over pixels it would be (4 + 8) / 20 = 0.6
    assert summary["pixel_accuracy"] == pytest.approx(0.75)
    assert summary["mean_iou"] == pytest.approx(0.75)


# --- collapsing a finer scheme's predictions --------------------------------------------


def test_collapse_nyu40_predictions_into_layout3_by_hand():
    nyu40, layout3 = load_scheme("nyu40"), load_scheme("layout3")
    table = collapse_table(nyu40, layout3, BUILTIN_SPACES["nyu40"])
    # nyu40 train ids (unlabelled ignored): wall 0, floor 1, ceiling 21 -> background 0;
    # chair 4, cabinet 2, otherprop 39 -> object 1
    pred40 = np.array(
        [
            [0, 21, 1, 4],
            [2, 0, 39, 1],
        ]
    )
    collapsed = table[pred40]
    np.testing.assert_array_equal(collapsed, [[0, 0, 0, 1], [1, 0, 1, 0]])
    assert table[255] == 255  # the ignore label stays ignored
    # layout3 ground truth: background 0, object 1, other 2 (unlabelled)
    target = np.array(
        [
            [0, 0, 1, 1],
            [1, 2, 1, 0],
        ]
    )
    cm = ConfusionMatrix(layout3.num_classes, layout3.ignore_index)
    cm.update(torch.from_numpy(target), torch.from_numpy(collapsed.astype(np.int64)))
    # (t, p): (0,0) (0,0) (1,0) (1,1) (1,1) (2,0) (1,1) (0,0)
    np.testing.assert_array_equal(cm.numpy(), [[3, 0, 0], [1, 3, 0], [1, 0, 0]])
    # all three classes: background 3 / (3 + 5 - 3), object 3 / (4 + 3 - 3), other 0 / 1
    np.testing.assert_allclose(iou_per_class(cm.numpy()), [3 / 5, 3 / 4, 0.0])
    # the fair comparison scores background and object only: the "other" GT pixel drops,
    # background: 3 / (3 + 4 - 3), object: 3 / (4 + 3 - 3); accuracy 6 / 7
    s = summarize(cm.numpy(), layout3.class_names, scored=[0, 1])
    assert s["per_class_iou"] == pytest.approx({"background": 3 / 4, "object": 3 / 4})
    assert s["pixel_accuracy"] == pytest.approx(6 / 7)


def test_collapse_layout3_into_nyu40_is_refused():
    with pytest.raises(SchemeError, match="cannot collapse layout3 into nyu40"):
        collapse_table(load_scheme("layout3"), load_scheme("nyu40"), BUILTIN_SPACES["nyu40"])
