import pytest

from imdb_cli.data.splits import stratified_split
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
