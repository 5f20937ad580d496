"""Learning-rate schedules: their length from the trainer, warmup then decay, the plateau scheduler,
and a resume whose schedule does not fit the run."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch

from imdb_cli.schedules import WarmupDecay, build_scheduler
from tests.commands import fit


def optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_onecycle_gets_total_steps_unless_the_config_sets_them():
    unset = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3, total_steps=None, epochs=None)
    assert build_scheduler(unset, optimizer(), 40)["scheduler"].total_steps == 40
    given = partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3, total_steps=12, epochs=None)
    assert build_scheduler(given, optimizer(), 40)["scheduler"].total_steps == 12
    constant = partial(torch.optim.lr_scheduler.ConstantLR, factor=1.0)
    config = build_scheduler(constant, optimizer(), 40)
    assert isinstance(config["scheduler"], torch.optim.lr_scheduler.ConstantLR) and config["interval"] == "step"


@pytest.mark.parametrize("decay", ["linear", "cosine"])
def test_warmup_then_decay_to_zero(decay):
    opt = optimizer(lr=2.0)
    scheduler = build_scheduler(partial(WarmupDecay, warmup_ratio=0.2, decay=decay), opt, 10)["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == pytest.approx([0.0, 1.0, 2.0])  # warmup over 2 of 10 steps to the peak
    assert lrs[-1] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:]))
    middle = 1.0 if decay == "linear" else 2.0 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi / 2)).item())
    assert lrs[6] == pytest.approx(middle)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        scheduler.step()


def test_plateau_steps_per_epoch_on_val_loss():
    plateau = partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=0)
    config = build_scheduler(plateau, optimizer(), 40)
    assert (config["interval"], config["monitor"]) == ("epoch", "val_loss")


@pytest.mark.parametrize(
    "scheduler",
    [
        ["--model.scheduler", "WarmupDecay", "--model.optimizer.lr", "1e-3"],
        ["--model.scheduler", "torch.optim.lr_scheduler.ReduceLROnPlateau", "--model.optimizer.lr", "1e-3"],
    ],
    ids=["WarmupDecay", "ReduceLROnPlateau"],
)
def test_the_offered_schedulers_train(tmp_path, tiny_encoder, imdb_archive, scheduler):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fit(tmp_path, tiny_encoder, imdb_archive, *scheduler, "--trainer.max_epochs", 2, "--trainer.log_every_n_steps", 1)
    events = EventAccumulator(str(tmp_path / "runs/lightning_logs/run")).Reload()
    tag = next(t for t in events.Tags()["scalars"] if t.startswith("lr-"))
    lrs = [e.value for e in events.Scalars(tag)]
    if scheduler[1] == "WarmupDecay":  # 10 steps, 1 of warmup: 0, the peak, then down
        assert lrs[:2] == pytest.approx([0.0, 1e-3]) and lrs[-1] < lrs[1]
    else:  # constant until a validation without improvement
        assert lrs and lrs[0] == pytest.approx(1e-3)


def test_resuming_into_a_longer_schedule_is_one_line(tmp_path, tiny_encoder, imdb_archive):
    fit(tmp_path, tiny_encoder, imdb_archive)
    last = "runs/lightning_logs/run/checkpoints/last.ckpt"
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--ckpt_path", last, "--trainer.max_epochs", "2", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"imdb: error: {last} continues a OneCycleLR schedule of 5 optimizer steps, but this run has 10: resume "
        "with the settings it started with, or train on from its weights in a new run "
        f"(imdb export --ckpt_path {last} --output_dir DIR, then imdb fit --model_dir DIR ...)"
    )


def test_small_data_takes_more_epochs_over_one_schedule(tmp_path, tiny_encoder, imdb_archive):
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--trainer.min_optimizer_steps", 12)
    assert "imdb: 5 optimizer steps an epoch: 3 epochs for at least 12 steps" in result.stderr
    run = tmp_path / "runs/lightning_logs/run"
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (2, 15)
    assert last["lr_schedulers"][0]["total_steps"] == 15  # one schedule over the three epochs
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert len(EventAccumulator(str(run)).Reload().Scalars("val_acc")) == 3  # best.ckpt chooses among three
    assert "min_optimizer_steps: 12" in (run / "config.yaml").read_text()


def test_a_set_large_enough_keeps_its_epochs(tmp_path, tiny_encoder, imdb_archive):
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--trainer.min_optimizer_steps", 5)
    assert "optimizer steps an epoch" not in result.stderr
    last = torch.load(tmp_path / "runs/lightning_logs/run/checkpoints/last.ckpt", weights_only=False)
    assert (last["epoch"], last["global_step"]) == (0, 5)
