"""`imdb sweep` and `imdb lr_find` end to end on the tiny encoder; the sweep file's checks and the
trial's report to the study on their own."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from imdb_cli.errors import UserError
from imdb_cli.tuning.sweep_file import read_sweep_file
from imdb_cli.tuning.trial import ReportToSweep, run_trial
from tests.commands import CONFIGS, IMDB, imdb

LR = "parameters:\n  model.scheduler.init_args.max_lr: {low: 1.0e-5, high: 1.0e-3, log: true}\n"


def sweep_args(encoder, archive, sweep_file, *extra) -> list:
    return [
        "sweep", "--config", CONFIGS / "minilm.yaml", "--sweep", sweep_file, "--model.encoder", encoder,
        "--data.source", archive, "--data.max_length", 24, "--data.batch_size", 4, "--trainer.default_root_dir",
        "run", "--trainer.min_optimizer_steps", 0, "--data.min_val_texts", 0, *extra,
    ]  # fmt: skip


def trials(workdir: Path) -> list[dict]:
    with open(workdir / "run/sweep/trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def wait_for_training(process: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (log.is_file() and "Epoch" in log.read_text(errors="replace")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1][-2000:]
        time.sleep(0.2)


def test_a_sweep_stops_at_ctrl_c_resumes_with_that_trial_never_repeats_settings_and_its_best_config_fits_again(
    tmp_path, tiny_encoder, imdb_archive
):
    import optuna

    (tmp_path / "lr.yaml").write_text("n_trials: 2\nsampler: random\npruner: none\n" + LR)
    args = list(map(str, sweep_args(tiny_encoder, imdb_archive, "lr.yaml", "--data.max_length", 64,
                                    "--trainer.logger", "CSVLogger")))  # fmt: skip
    first = subprocess.Popen(
        [IMDB, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    wait_for_training(first, tmp_path / "run/sweep/trial_000/fit.log")
    os.killpg(first.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole process group
    started = time.monotonic()
    _, err = first.communicate(timeout=30)
    assert first.returncode == 130 and time.monotonic() - started < 10, err[-2000:]
    assert err.strip().splitlines()[-1] == "imdb: interrupted"
    study = optuna.load_study(study_name="lr", storage=f"sqlite:///{tmp_path / 'run/sweep.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL"]  # marked failed, to be run again
    interrupted = str(study.trials[0].params["model.scheduler.init_args.max_lr"])

    # Resumed (1): the interrupted trial's settings run first, then new ones.
    result = imdb(*args, cwd=tmp_path)
    done = [r for r in trials(tmp_path) if r["state"] == "complete"]
    assert len(done) == 2 and done[0]["model.scheduler.init_args.max_lr"] == interrupted
    for row in done:  # each trial an ordinary fit with its own run directory, with the sweep's logger
        run = tmp_path / row["run_dir"] / "lightning_logs/version_0"
        assert (run / "checkpoints/best.ckpt").is_file() and (run / "config.yaml").is_file()
        with open(run / "metrics.csv", newline="") as f:
            logged = list(csv.DictReader(f))
        assert any(r["val_acc"] for r in logged) and any(r["train_loss"] for r in logged)
    assert re.search(r"val_acc: mean \d\.\d{4} ± \d\.\d{4} \(standard deviation\) over 2 trials", result.stdout)
    for plot in ("optimization_history", "slice", "param_importances"):
        assert (tmp_path / f"run/sweep/{plot}.png").stat().st_size > 5000
    ckpt = tmp_path / done[0]["run_dir"] / "lightning_logs/version_0/checkpoints/best.ckpt"
    imdb("test", "--ckpt_path", ckpt, "--trainer.logger", "CSVLogger", cwd=tmp_path)  # beside its report
    with open(ckpt.parent.parent / "test/best/lightning_logs/version_0/metrics.csv", newline="") as f:
        assert float(next(csv.DictReader(f))["test_acc"]) >= 0

    # The winner, refitted from best.yaml alone with the same seed, scores what its trial scored.
    best = max(done, key=lambda r: (float(r["val_acc"]), -int(r["trial"])))
    refit = imdb("fit", "--config", "run/sweep/best.yaml", "--trainer.logger.init_args.version", "refit", cwd=tmp_path)
    assert f"(val_acc={float(best['val_acc']):.4f})" in refit.stdout

    # Resumed (2): two processes on one study take it to 4 trials, and none is run twice.
    logs = [tmp_path / row["run_dir"] / "fit.log" for row in done]
    before = [log.stat().st_mtime_ns for log in logs]
    workers = [subprocess.Popen([IMDB, *args, "--n_trials", "4"], cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    rows = trials(tmp_path)
    done = [r for r in rows if r["state"] == "complete"]
    assert 4 <= len(done) <= 5  # each worker checks the count between trials
    assert len({r["run_dir"] for r in rows}) == len(rows)
    assert [log.stat().st_mtime_ns for log in logs] == before  # the finished trials were not run again
    assert all("trials done" in err for _, err in outputs)

    # Resumed (3): one more trial; every completed trial's settings differ.
    imdb(*args, "--n_trials", len(done) + 1, cwd=tmp_path)
    done = [r for r in trials(tmp_path) if r["state"] == "complete"]
    assert len({r["model.scheduler.init_args.max_lr"] for r in done}) == len(done) >= 5


def test_a_killed_k_fold_cross_validation_goes_on_without_repeating_a_fold(tmp_path, tiny_encoder, imdb_archive):
    sweep = "sampler: grid\npruner: none\nfixed:\n  data.num_folds: 3\nparameters:\n  data.fold: [0, 1, 2]\n"
    (tmp_path / "kfold.yaml").write_text(sweep)
    args = list(map(str, sweep_args(tiny_encoder, imdb_archive, "kfold.yaml")))
    first = subprocess.Popen([IMDB, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second_trial = tmp_path / "run/sweep/trial_001/fit.log"
    deadline = time.monotonic() + 120
    while not (second_trial.is_file() and "Epoch" in second_trial.read_text(errors="replace")):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-2000:]
        time.sleep(0.2)
    first.send_signal(signal.SIGTERM)  # killed while fold 1 trains
    first.communicate(timeout=60)
    assert first.returncode != 0
    result = imdb(*args, cwd=tmp_path)
    rows = trials(tmp_path)
    done = [r for r in rows if r["state"] == "complete"]
    assert sorted(r["data.fold"] for r in done) == ["0", "1", "2"]  # every fold once
    assert [r["trial"] for r in done if r["data.fold"] == "0"] == ["0"]  # fold 0, finished before, kept
    assert any(r["state"] == "fail" and r["data.fold"] == "1" for r in rows)
    assert re.search(r"val_acc: mean \d\.\d{4} ± \d\.\d{4} \(standard deviation\) over 3 trials", result.stdout)
    best = (tmp_path / "run/sweep/best.yaml").read_text()
    assert "num_folds: 3" in best


def test_lr_find_sized_to_the_data_writes_a_suggestion_and_its_plot(tmp_path, tiny_encoder, imdb_archive):
    result = imdb(
        "lr_find", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source",
        imdb_archive, "--data.max_length", 24, "--data.batch_size", 4, "--early_stop_threshold", "null",
        "--output_dir", "lr", cwd=tmp_path,
    )  # fmt: skip
    found = json.loads((tmp_path / "lr/lr_find.json").read_text())
    assert found["steps"] == 20 and len(found["lr"]) == len(found["loss"]) == 20  # 5 batches an epoch: the fewest
    assert found["lr"] == sorted(found["lr"]) and 1e-7 <= found["lr"][0] < found["lr"][-1] <= 1e-2
    assert 1e-7 <= found["suggestion"] <= 1e-2
    assert f"suggested learning rate: {found['suggestion']:.3g}" in result.stdout
    assert "imdb: lr_find: 20 steps, learning rates 1e-07 to 0.01" in result.stderr
    assert re.search(r"imdb: lr_find: [\d.]+ s a step, about \d+ s more", result.stderr)
    assert "weights_only" not in result.stderr and "Restor" not in result.stderr
    assert (tmp_path / "lr/lr_find.png").stat().st_size > 5000
    assert not list(tmp_path.glob(".lr_find_*.ckpt"))  # Lightning's temporary checkpoint is gone


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parameters: {}\n", "names no parameters"),
        ("colour: red\n" + LR, "unknown field 'colour'"),
        ("parameters:\n  model.dropout: {low: 0.3, high: 0.3}\n", "model.dropout has an empty range: low 0.3"),
        ("parameters:\n  model.dropout: []\n", "model.dropout has an empty list of choices"),
        ("parameters:\n  dropout: [0.1]\n", "parameter 'dropout' is not a dotted imdb fit key"),
        ("parameters:\n  model.dropout: {low: 0, high: 0.5, log: true}\n", "a log range needs low above 0"),
        (
            "sampler: grid\nparameters:\n  model.dropout: {low: 0.1, high: 0.5}\n",
            "needs a list, or a range with a step",
        ),
        ("sampler: bayes\n" + LR, "sampler is 'bayes', expected one of tpe, random, grid"),
        ("fixed:\n  model.scheduler.init_args.max_lr: 1\n" + LR, "is both fixed and searched"),
    ],
)
def test_a_bad_sweep_file_is_one_line(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UserError, match=re.escape(message)):
        read_sweep_file(str(tmp_path / "bad.yaml"))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ("  model.dropoutt: [0.1, 0.2]\n", "imdb fit has no option --model.dropoutt; did you mean --model.dropout?"),
        ("  data.batch_size: [8, big]\n", "--data.batch_size 'big' is not valid: expects an integer >0"),
    ],
)
def test_settings_imdb_fit_does_not_take_are_refused_before_any_training(
    tmp_path, tiny_encoder, imdb_archive, parameters, message
):
    (tmp_path / "bad.yaml").write_text("parameters:\n" + parameters)
    result = imdb(*sweep_args(tiny_encoder, imdb_archive, "bad.yaml"), cwd=tmp_path, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"imdb: error: sweep file bad.yaml does not fit imdb fit: {message} (see imdb fit --help)"
    assert not list((tmp_path / "run/sweep").glob("trial_*"))


def test_a_trial_reports_each_validation_and_is_stopped_when_the_pruner_says_so(tmp_path):
    import optuna

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    good = study.ask()
    good.report(0.9, step=10)
    study.tell(good, 0.9)
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=10, should_stop=False,
                              callback_metrics={"val_acc": torch.tensor(0.5)})  # fmt: skip
    script = (  # a fit that validates once, then trains until the sweep stops it
        "import sys, time, torch; from types import SimpleNamespace; from imdb_cli.tuning.trial import ReportToSweep\n"
        f"c = ReportToSweep({str(tmp_path)!r}, 'val_acc')\n"
        "t = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=10, should_stop=False, "
        "callback_metrics={'val_acc': torch.tensor(0.5)})\n"
        "c.on_validation_end(t, None)\n"
        "while not t.should_stop: c.on_train_batch_start(t, None, None, 0); time.sleep(0.05)\n"
    )
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        run_trial(optuna, trial, [sys.executable, "-c", script], tmp_path, "maximize")
    assert trial.user_attrs["pruned_at_step"] == 10 and (tmp_path / "stop").is_file()
    assert study.trials[1].intermediate_values == {10: 0.5}
    with pytest.raises(UserError, match="the sweep's metric val_f1 is not logged: pick one of val_acc"):
        ReportToSweep(str(tmp_path), "val_f1").on_validation_end(trainer, None)
