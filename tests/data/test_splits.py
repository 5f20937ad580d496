import re

import pytest

from imdb_cli.data.splits import stratified_fold, stratified_split
from imdb_cli.errors import UserError


def test_every_stratum_is_split_in_proportion_and_a_rare_one_reaches_both():
    strata = ["common"] * 95 + ["rare"] * 5
    train, val = stratified_split(strata, 0.25, seed=42)
    assert sorted(train + val) == list(range(100)) and not set(train) & set(val)
    assert [strata[i] for i in val].count("rare") == 1 and [strata[i] for i in train].count("rare") == 4
    assert [strata[i] for i in val].count("common") == 24
    assert stratified_split(strata, 0.25, seed=42) == (train, val)
    assert stratified_split(strata, 0.25, seed=7) != (train, val)


def test_two_texts_of_a_class_put_one_in_each_split():
    train, val = stratified_split(["a", "a", "b", "b", "b", "b"], 0.1, seed=0)
    assert sorted(i for i in val) != [] and {0, 1} & set(val) and {0, 1} & set(train)


def test_nothing_held_out_is_one_line_and_zero_trains_on_all():
    with pytest.raises(UserError, match="holds out no text"):
        stratified_split(["a", "b", "c"], 0.1, seed=0)
    assert stratified_split(["a", "a", "b"], 0, seed=0) == ([0, 1, 2], [])


def test_the_folds_cover_every_text_once_in_proportion_and_in_equal_sizes():
    strata = ["pos"] * 31 + ["neg"] * 14
    folds = [stratified_fold(strata, 5, fold, seed=3) for fold in range(5)]
    vals = [val for _, val in folds]
    assert sorted(i for val in vals for i in val) == list(range(45))
    assert {len(val) for val in vals} == {9}
    for train, val in folds:
        assert sorted(train + val) == list(range(45)) and not set(train) & set(val)
        assert sum(strata[i] == "neg" for i in val) in (2, 3)  # 14 negatives over 5 folds
    assert stratified_fold(strata, 5, 2, seed=3) == folds[2]  # seeded: the same split every time
    assert stratified_fold(strata, 5, 2, seed=4) != folds[2]


@pytest.mark.parametrize(
    ("num_folds", "fold", "message"),
    [
        (5, 5, "--data.fold 5 is not a fold of --data.num_folds 5: pick 0 to 4"),
        (1, 0, "--data.num_folds 1 cannot fold 4 training texts: pick 2 to 4"),
        (5, 0, "--data.num_folds 5 cannot fold 4 training texts: pick 2 to 4"),
    ],
)
def test_impossible_folds_are_one_line(num_folds, fold, message):
    with pytest.raises(UserError, match=re.escape(message)):
        stratified_fold(["a", "b", "a", "b"], num_folds, fold, seed=0)
