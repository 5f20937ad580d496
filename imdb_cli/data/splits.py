"""The seeded, stratified split of a training set into training and validation texts: a held-out
share, or one fold of k (k-fold cross-validation)."""

from __future__ import annotations

import random
from collections import defaultdict

from imdb_cli.errors import UserError


def stratified_split(strata: list, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, val)``, each sorted: ``fraction`` of every stratum (label) held out, at
    least one text of each stratum that has two or more (when ``fraction`` holds out any text at all),
    so that a rare class is in both splits.

    The texts of each stratum are shuffled with ``seed``; the same data and seed give the same split
    everywhere.
    """
    if fraction and round(len(strata) * fraction) == 0:
        raise _nothing_held(fraction, len(strata), "no text", "raise it")
    groups: dict = defaultdict(list)
    for index, key in enumerate(strata):
        groups[key].append(index)
    rng = random.Random(seed)
    train, val = [], []
    for key in sorted(groups, key=repr):
        members = groups[key]
        rng.shuffle(members)
        n_val = round(len(members) * fraction)
        if fraction and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val += members[:n_val]
        train += members[n_val:]
    if fraction and (not val or not train):
        raise _nothing_held(
            fraction, len(strata), *(("no text", "raise it") if not val else ("every text", "lower it"))
        )
    return sorted(train), sorted(val)


def stratified_fold(strata: list, num_folds: int, fold: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(train, val)``, each sorted: ``val`` is fold ``fold`` of ``num_folds``, ``train`` the others.

    Every stratum (label) is shuffled with ``seed`` and dealt round the folds, each stratum starting
    where the last one stopped, so that folds differ in size by at most one text and hold each label
    in proportion. The folds of one data set and seed are disjoint and cover it: the ``num_folds``
    runs of a cross-validation validate on every text once.
    """
    if not 0 <= fold < num_folds:
        raise UserError(f"--data.fold {fold} is not a fold of --data.num_folds {num_folds}: pick 0 to {num_folds - 1}")
    if num_folds < 2 or num_folds > len(strata):
        texts = len(strata)
        raise UserError(f"--data.num_folds {num_folds} cannot fold {texts} training texts: pick 2 to {texts}")
    groups: dict = defaultdict(list)
    for index, key in enumerate(strata):
        groups[key].append(index)
    rng = random.Random(seed)
    train, val, dealt = [], [], 0
    for key in sorted(groups, key=repr):
        members = groups[key]
        rng.shuffle(members)
        for member in members:
            (val if dealt % num_folds == fold else train).append(member)
            dealt += 1
    return sorted(train), sorted(val)


def _nothing_held(fraction: float, texts: int, held: str, advice: str) -> UserError:
    return UserError(
        f"--data.val_fraction {fraction} of {texts} training texts holds out {held}: "
        f"{advice}, or pass 0 to train on all of them without validation"
    )
