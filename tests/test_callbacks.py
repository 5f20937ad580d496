"""Fits that validate rarely or never keep their work: one last.ckpt, the newest state, and a note."""

from __future__ import annotations

import pytest
import torch

from tests.commands import fit

NO_VALIDATION = "imdb: no validation ran in this fit"


@pytest.mark.parametrize(
    ("extra", "steps"),
    [
        (["--trainer.limit_val_batches", "0"], 5),  # 18 of the 24 training reviews, batch 4
        (["--trainer.max_steps", "3"], 3),  # ends before the end-of-epoch validation
        (["--data.val_fraction", "0"], 6),  # every one of the 24 training reviews
    ],
    ids=["limit_val_batches", "max_steps", "val_fraction"],
)
def test_a_fit_without_validation_keeps_last_ckpt(tmp_path, tiny_encoder, imdb_archive, extra, steps):
    result = fit(tmp_path, tiny_encoder, imdb_archive, *extra)
    checkpoints = tmp_path / "runs/lightning_logs/run/checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == ["last.ckpt"]
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == steps
    assert [line for line in result.stderr.splitlines() if "validation" in line] == [
        f"{NO_VALIDATION}: no best checkpoint was chosen and early stopping did not act"
    ]
    assert "last checkpoint: runs/lightning_logs/run/checkpoints/last.ckpt" in result.stdout
    assert "Traceback" not in result.stderr


def test_one_last_ckpt_holds_the_newest_state(tmp_path, tiny_encoder, imdb_archive):
    fit(tmp_path, tiny_encoder, imdb_archive, "--trainer.max_epochs", "2")
    checkpoints = tmp_path / "runs/lightning_logs/run/checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, 10)


def test_last_ckpt_is_a_copy_of_best_ckpt_saved_at_the_same_step(tmp_path, tiny_encoder, imdb_archive):
    fit(tmp_path, tiny_encoder, imdb_archive)  # one epoch: best and last both at its end
    checkpoints = tmp_path / "runs/lightning_logs/run/checkpoints"
    best, last = (checkpoints / "best.ckpt").read_bytes(), (checkpoints / "last.ckpt").read_bytes()
    assert best == last
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["optimizer_states"]


def test_a_validation_share_too_small_for_one_text_is_one_line(tmp_path, tiny_encoder, imdb_archive):
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--data.val_fraction", "0.0001", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "imdb: error: --data.val_fraction 0.0001 of 24 training texts holds out no text: raise it, "
        "or pass 0 to train on all of them without validation"
    )


def test_fast_dev_run_names_no_checkpoint_and_writes_none(tmp_path, tiny_encoder, imdb_archive):
    result = fit(tmp_path, tiny_encoder, imdb_archive, "--trainer.fast_dev_run", "true")
    assert "checkpoint:" not in result.stdout
    assert "imdb: fast_dev_run saves no checkpoint" in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_last_ckpt_waits_for_its_step_count_at_an_epoch_end(monkeypatch):
    """A set of two steps an epoch must not write the checkpoint at each of its many epoch ends."""
    from types import SimpleNamespace

    from imdb_cli.callbacks import LastCheckpoint

    callback, saved = LastCheckpoint(every_n_train_steps=5), []
    trainer = SimpleNamespace(global_step=0, current_epoch=0, max_epochs=10, should_stop=False)

    def save(trainer, candidates):
        saved.append(trainer.global_step)
        callback._last_global_step_saved = trainer.global_step

    monkeypatch.setattr(callback, "_save_last_checkpoint", save)
    monkeypatch.setattr(callback, "_should_skip_saving_checkpoint", lambda trainer: False)
    monkeypatch.setattr(callback, "_monitor_candidates", lambda trainer: {})
    for epoch in range(10):
        trainer.global_step, trainer.current_epoch = 2 * (epoch + 1), epoch
        callback.on_train_epoch_end(trainer, None)
    assert saved == [6, 12, 18, 20]  # and the last epoch's end

    # Early stopping asks to stop from the third epoch on, but min_steps keeps the fit going until step 14.
    callback, saved[:] = LastCheckpoint(every_n_train_steps=5), []
    monkeypatch.setattr(callback, "_save_last_checkpoint", save)
    monkeypatch.setattr(callback, "_should_skip_saving_checkpoint", lambda trainer: False)
    monkeypatch.setattr(callback, "_monitor_candidates", lambda trainer: {})
    trainer.should_stop = True
    for epoch in range(2, 10):
        trainer.global_step, trainer.current_epoch = 2 * (epoch + 1), epoch
        trainer.fit_loop = SimpleNamespace(_can_stop_early=trainer.global_step >= 14)
        callback.on_train_epoch_end(trainer, None)
        if trainer.fit_loop._can_stop_early:
            break
    assert saved == [6, 12, 14]  # the fit ends after step 14's epoch
