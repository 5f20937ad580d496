import pytest
import torch
from torch import nn

from imdb_cli.errors import UserError
from imdb_cli.tasks import Regression


def test_cells_must_be_finite_numbers():
    assert Regression.parse(" 7 ", None) == 7.0 and Regression.parse(2.5, None) == 2.5
    for cell, message in (("great", "'great' is not a number"), ("nan", "not a finite number"), (None, "None")):
        with pytest.raises(ValueError, match=message):
            Regression.parse(cell, None)
    with pytest.raises(UserError, match="regression needs targets that vary"):
        Regression.label_names_of([3.0, 3.0], "rating")
    assert Regression.label_names_of([1.0, 3.0], "rating") == ["rating"]


def test_strata_are_deciles_of_the_target():
    values = [float(v) for v in range(100, 0, -1)]
    strata = Regression.strata(values)
    assert strata[0] == 9 and strata[-1] == 0 and sorted(set(strata)) == list(range(10))
    assert Regression.strata([1.0, 10.0, 1.0]) == [1.0, 10.0, 1.0]  # few values: each its own stratum


def test_the_head_learns_standardised_targets_and_the_scores_undo_it():
    task = Regression(["rating"])
    task.fit_to([1.0, 3.0, 5.0], None)
    assert float(task.target_mean) == 3.0 and float(task.target_std) == 2.0
    logits = torch.tensor([[-1.0], [0.5]])
    assert task.scores(logits).tolist() == [1.0, 4.0]
    assert float(task.loss(logits, torch.tensor([1.0, 4.0]), training=True)) == 0.0
    assert task.record(4.0) == {"value": 4.0}
    with pytest.raises(UserError, match="a regression has none"):
        task.fit_to([1.0, 2.0], "balanced")


def test_a_head_trained_before_keeps_its_scale():
    task = Regression(["rating"])
    task.fit_to([10.0, 20.0], None, trained_head=True)
    assert (float(task.target_mean), float(task.target_std)) == (0.0, 1.0)


def test_the_exported_output_layer_gives_the_target_itself():
    task = Regression(["rating"])
    task.fit_to([2.0, 9.0, 10.0, 1.0], None)
    head = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Dropout(), nn.Linear(3, 1)).eval()
    exported = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Dropout(), nn.Linear(3, 1)).eval()
    weight, bias = task.export_output_layer(head[3].weight.detach(), head[3].bias.detach())
    exported.load_state_dict(head.state_dict() | {"3.weight": weight, "3.bias": bias})
    cls = torch.randn(5, 4)
    with torch.no_grad():
        assert exported(cls)[:, 0].tolist() == pytest.approx(task.scores(head(cls)).tolist(), abs=1e-5)
