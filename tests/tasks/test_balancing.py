"""Balanced decisions: the logit shift chosen on validation data recalls every class alike."""

from __future__ import annotations

import torch
from torchmetrics.classification import MulticlassRecall

from imdb_cli.tasks.balancing import balanced_recall, balanced_shift
from imdb_cli.tasks.single_label import SingleLabel


def skewed(n_common: int = 950, n_rare: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of a model that ranks well but leans to the common class: the rare class's
    margin ~ N(-1, 1), the common class's ~ N(-3, 1), so argmax recalls few of the rare texts."""
    torch.manual_seed(0)
    targets = torch.cat([torch.zeros(n_common), torch.ones(n_rare)]).long()
    margin = torch.where(targets == 1, torch.randn(len(targets)) - 1, torch.randn(len(targets)) - 3)
    return torch.stack([torch.zeros_like(margin), margin], 1).log_softmax(-1), targets


def test_the_shift_moves_a_binary_decision_to_the_best_balanced_accuracy():
    log_probs, targets = skewed()
    before = balanced_recall(log_probs, targets, targets.unique())
    shift = balanced_shift(log_probs, targets)
    after = balanced_recall(log_probs + shift, targets, targets.unique())
    assert before < 0.6 and after > 0.8
    assert shift[0] == 0 and 1.0 < shift[1] < 3.0  # the cut lands between the two classes' margins (-3, -1)
    margin = log_probs[:, 1] - log_probs[:, 0]
    for other in torch.linspace(-1, 5, 61):  # no cut does better
        assert balanced_recall(log_probs + torch.tensor([0, other]), targets, targets.unique()) <= after + 1e-6
    assert ((margin + shift[1]) > 0).float().mean() > (margin > 0).float().mean()


def test_three_classes_and_a_single_class():
    torch.manual_seed(1)
    targets = torch.randint(0, 3, (600,))
    logits = torch.randn(600, 3) + 1.5 * torch.nn.functional.one_hot(targets, 3)
    logits[:, 0] += 2  # leans to class 0
    shift = balanced_shift(logits, targets)
    assert (
        balanced_recall(logits + shift, targets, targets.unique())
        > balanced_recall(logits, targets, targets.unique()) + 0.1
    )
    assert balanced_shift(logits, torch.zeros(600, dtype=torch.long)).tolist() == [0.0, 0.0, 0.0]


def test_the_task_decides_validation_metrics_with_the_shift():
    task = SingleLabel(["common", "rare"])
    task.balance_decisions()
    metrics = task.metrics().clone(prefix="val_")
    log_probs, targets = skewed()
    for scores, batch_targets in zip(log_probs.exp().split(100), targets.split(100), strict=True):
        task.update(metrics, scores, batch_targets)
    shift = task.on_validation_end(metrics)
    recall = MulticlassRecall(2, average="macro")(log_probs.softmax(-1) + 0, targets)
    assert shift[1] > 1.0
    shifted = (log_probs + shift).softmax(-1)
    assert metrics.compute()["val_acc"] == (shifted.argmax(-1) == targets).float().mean()
    assert MulticlassRecall(2, average="macro")(shifted, targets) > recall + 0.2
    assert task.on_validation_end(metrics) is None  # nothing held after the end
