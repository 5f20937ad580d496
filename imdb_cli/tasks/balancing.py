"""Decisions that treat the classes alike: a shift of the logits, chosen on validation data, under
which every class is recalled as well as the others (threshold moving, as scikit-learn's
``TunedThresholdClassifierCV`` with ``balanced_accuracy`` does for a binary classifier).

Class weights and a balanced sampler ask the model to treat the classes alike, but on a few
hundred texts of the rare class the network soon fits every training text, the weights stop
acting, and the decision boundary falls back towards the common class while the ranking stays
good (a 95/5 set of IMDB reviews: CHANGELOG, 2026-12-05). Moving the decision, not the ranking,
recovers what the weights asked for.
"""

from __future__ import annotations

import torch

CANDIDATES = 201
"""Shifts tried for each class: cuts between the margins by which its texts make or miss that class."""
ROUNDS = 3
"""Passes over the classes (one suffices for two classes, whose shift is one number)."""


def balances_classes(pl_module, datamodule) -> bool:
    """Whether training asks for the classes to count alike: ``--model.class_weights`` or
    ``--data.sampler balanced``."""
    sampler = getattr(getattr(datamodule, "hparams", None), "sampler", None)
    return getattr(pl_module.hparams, "class_weights", None) is not None or sampler == "balanced"


def balanced_recall(log_probs: torch.Tensor, targets: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean recall over the ``present`` classes of argmax decisions, for each row of a stack of
    shifted ``(…, texts, classes)`` log-probabilities."""
    hits = log_probs.argmax(-1) == targets
    recalls = [(hits & (targets == c)).sum(-1) / (targets == c).sum() for c in present.tolist()]
    return torch.stack(recalls, -1).float().mean(-1)


def cuts(margin: torch.Tensor) -> torch.Tensor:
    """Where to cut the sorted margins: halfway between neighbours, and beyond either end (at most
    ``CANDIDATES`` of them, evenly spaced)."""
    values = margin.unique()  # sorted
    cut = torch.cat([values[:1] - 1, (values[1:] + values[:-1]) / 2, values[-1:] + 1])
    if len(cut) > CANDIDATES:
        cut = cut[torch.linspace(0, len(cut) - 1, CANDIDATES).round().long()]
    return cut


def balanced_shift(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A shift per class, added to the logits, under which argmax decisions on these texts have the
    highest mean recall over their classes (balanced accuracy); zeros where fewer than two classes
    are present. Among cuts that tie, the middle one: the widest margin either side."""
    log_probs, targets = log_probs.float(), targets.long()
    classes = log_probs.shape[-1]
    shift = torch.zeros(classes)
    present = targets.unique()
    if len(present) < 2:
        return shift
    for _ in range(ROUNDS if classes > 2 else 1):
        for c in range(1, classes) if classes == 2 else range(classes):
            shifted = log_probs + shift
            others = torch.cat([shifted[:, :c], shifted[:, c + 1 :]], 1).max(1).values
            extra = -cuts(shifted[:, c] - others)  # class c where its margin over the others > the cut
            trial = shifted.unsqueeze(0).repeat(len(extra), 1, 1)
            trial[:, :, c] += extra.unsqueeze(1)
            score = balanced_recall(trial, targets, present)
            best = (score >= score.max() - 1e-9).nonzero()[:, 0]
            shift[c] += extra[best[len(best) // 2]]
    return shift
