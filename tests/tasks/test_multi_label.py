import pytest
import torch

from imdb_cli.errors import UserError
from imdb_cli.tasks import MultiLabel

NAMES = ["action", "comedy", "drama"]


def test_cells_become_sets_of_labels():
    assert MultiLabel.parse(["comedy", " action "], None) == ("comedy", "action")
    assert MultiLabel.parse("action|comedy|action", "|") == ("action", "comedy")
    assert MultiLabel.parse("drama", None) == ("drama",)
    assert MultiLabel.parse("", "|") == () and MultiLabel.parse(None, "|") == ()  # a text with no label
    with pytest.raises(ValueError, match=r"label separator '\|' leaves an empty label in 'action\|\|comedy'"):
        MultiLabel.parse("action||comedy", "|")


def test_targets_are_one_row_of_zeros_and_ones_per_text():
    labels = [("comedy", "action"), (), ("drama",)]
    assert MultiLabel.label_names_of(labels, "label") == NAMES
    assert MultiLabel.targets(labels, NAMES, "train") == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(UserError, match="test data has label 'horror', not one of the model's: action, comedy, drama"):
        MultiLabel.targets([("horror",)], NAMES, "test")


def test_a_row_is_stratified_by_its_rarest_label():
    labels = [("action", "drama"), ("action",), ("action", "comedy"), ()]
    assert MultiLabel.strata(labels) == ["drama", "action", "comedy", ""]


def test_balanced_weights_are_negatives_per_positive():
    task = MultiLabel(NAMES)
    task.fit_to([[1, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]], "balanced")
    assert task.pos_weight.tolist() == pytest.approx([1 / 3, 3.0, 3.0])
    with pytest.raises(UserError, match="label 'drama' has no training texts"):
        MultiLabel(NAMES).fit_to([[1, 0, 0], [0, 1, 0]], "balanced")
    with pytest.raises(UserError, match="gives 2 weights for 3 labels"):
        MultiLabel(NAMES).fit_to([[1, 0, 0]], [1.0, 2.0])


def test_thresholds_decide_each_label_and_records_list_those_that_pass():
    task = MultiLabel(NAMES, [0.5, 0.2, 0.9])
    scores = torch.tensor([[0.6, 0.3, 0.8]])
    assert task.decide(scores).tolist() == [[1, 1, 0]]
    record = task.record([0.6, 0.3, 0.8])
    assert record == {"labels": ["action", "comedy"], "probs": {"action": 0.6, "comedy": 0.3, "drama": 0.8}}
    assert MultiLabel(NAMES, 0.95).record([0.6, 0.3, 0.8])["labels"] == []
    assert task.csv_values(record) == ["action|comedy", 0.6, 0.3, 0.8]
    with pytest.raises(UserError, match="gives 2 thresholds for 3 labels"):
        MultiLabel(NAMES, [0.5, 0.5])


def test_tuning_chooses_each_labels_best_f1_threshold_on_validation():
    task = MultiLabel(["a", "b"], "tune")
    metrics = task.metrics().clone(prefix="val_")
    # Label a: positives score 0.3-0.4, negatives 0.1-0.2, so 0.5 finds none; label b is cut at 0.7.
    scores = torch.tensor([[0.3, 0.9], [0.4, 0.8], [0.1, 0.6], [0.2, 0.5]])
    targets = torch.tensor([[1, 1], [1, 1], [0, 0], [0, 0]])
    task.update(metrics, scores, targets)
    assert task.thresholds.tolist() == [0.5, 0.5]  # until validation ends
    task.on_validation_end(metrics)
    a, b = task.thresholds.tolist()
    assert 0.2 < a <= 0.3 and 0.6 < b <= 0.8  # the middle of the ties: 0.26 and 0.71
    assert task.decide(scores).tolist() == targets.tolist()
    assert metrics.compute()["val_f1_micro"] == 1.0  # the score of the thresholds just chosen, not of 0.5


def test_a_threshold_given_with_a_checkpoint_replaces_the_tuned_one():
    saved = {"threshold": "tune"}
    state = {"task.thresholds": torch.tensor([0.3, 0.7])}
    MultiLabel(["a", "b"], "tune").load_overrides(state, saved)
    assert state["task.thresholds"].tolist() == pytest.approx([0.3, 0.7])  # the checkpoint's own
    MultiLabel(["a", "b"], 0.4).load_overrides(state, saved)
    assert state["task.thresholds"].tolist() == pytest.approx([0.4, 0.4])
