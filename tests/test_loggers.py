"""Any Lightning logger in `imdb fit`, `test` and `sweep`: MLflow (a local sqlite store) and Weights &
Biases (offline), with the real packages (CSV: tests/tuning/test_sweep.py). Every run's files stay
under the run directory, one config.yaml per run; a logger that cannot be used is one line, before
any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.commands import CONFIGS, imdb

LR = "n_trials: 2\nsampler: random\nparameters:\n  model.scheduler.init_args.max_lr: {low: 1.0e-5, high: 1.0e-3}\n"


def common(encoder, archive) -> list:
    return [
        "--config", CONFIGS / "minilm.yaml", "--model.encoder", encoder, "--data.source", archive,
        "--data.max_length", 24, "--data.batch_size", 4, "--data.cache_dir", "cache",
        "--trainer.min_optimizer_steps", 0, "--data.min_val_texts", 0,
    ]  # fmt: skip


def files_outside(workdir: Path, *kept: str) -> list[str]:
    return sorted(p.name for p in workdir.iterdir() if p.name not in {"cache", "lr.yaml", *kept})


def test_mlflow_with_a_sqlite_store_in_a_sweep_and_a_test(tmp_path, tiny_encoder, imdb_archive):
    mlflow = pytest.importorskip("mlflow")
    logger = ["--trainer.logger", "MLFlowLogger", "--trainer.logger.init_args.tracking_uri", "sqlite:///mlflow.db"]
    (tmp_path / "lr.yaml").write_text(LR)
    imdb("sweep", *common(tiny_encoder, imdb_archive), "--sweep", "lr.yaml", "--trainer.default_root_dir", "run",
         *logger, cwd=tmp_path)  # fmt: skip
    configs = sorted((tmp_path / "run/sweep").glob("trial_00*/*/*/config.yaml"))  # RUN/EXPERIMENT/RUN_ID
    assert len(configs) == 2 and all((c.parent / "checkpoints/best.ckpt").is_file() for c in configs)

    ckpt = configs[0].parent / "checkpoints/best.ckpt"
    imdb("test", "--ckpt_path", ckpt, *logger, cwd=tmp_path)
    assert files_outside(tmp_path, "run") == ["mlflow.db"]  # the store the user named, and nothing else

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    fits = [r for r in runs if "val_acc" in r.data.metrics]
    tests = [r for r in runs if "test_acc" in r.data.metrics]
    assert len(fits) == 2 and len(tests) == 1 and all(r.info.status == "FINISHED" for r in runs)
    assert {r.info.run_id for r in fits} == {c.parent.name for c in configs}
    report = {Path(a.path).name for a in client.list_artifacts(tests[0].info.run_id, "test_report")}
    assert {"test_metrics.json", "confusion_matrix.png", "roc_curve.png"} <= report
    stored = Path(client.get_experiment(tests[0].info.experiment_id).artifact_location.removeprefix("file://"))
    assert stored.is_relative_to(tmp_path / "run")


def test_weights_and_biases_offline_in_a_fit_and_a_test(tmp_path, tiny_encoder, imdb_archive, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = ["--trainer.logger", "WandbLogger", "--trainer.logger.init_args.offline", "true"]
    fit = imdb("fit", *common(tiny_encoder, imdb_archive), "--trainer.default_root_dir", "run", *logger, cwd=tmp_path)
    (offline,) = (tmp_path / "run/wandb").glob("offline-run-*")
    run_id = offline.name.rsplit("-", 1)[1]
    ckpt = tmp_path / f"run/lightning_logs/{run_id}/checkpoints/best.ckpt"
    assert (
        ckpt.is_file()
        and (ckpt.parent.parent / "config.yaml").is_file()
        and str(ckpt.relative_to(tmp_path)) in fit.stdout
    )

    imdb("test", "--ckpt_path", ckpt, *logger, cwd=tmp_path)
    tested = list((ckpt.parent.parent / "test/best/wandb").glob("offline-run-*/files/media/images/test_report*.png"))
    assert tested and (ckpt.parent.parent / "test/best/test_metrics.json").is_file()
    assert files_outside(tmp_path, "run") == []


def test_a_logger_that_cannot_start_is_one_line_before_any_training(tmp_path, tiny_encoder, imdb_archive, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # MLflow 3 refuses a new file store
    file_store = ["--trainer.logger", "MLFlowLogger", "--trainer.logger.init_args.tracking_uri", "file:./mlruns"]
    (tmp_path / "lr.yaml").write_text(LR)
    for command in (["fit"], ["sweep", "--sweep", "lr.yaml"]):
        result = imdb(*command, *common(tiny_encoder, imdb_archive), "--trainer.default_root_dir", "run", *file_store,
                      cwd=tmp_path, check=False)  # fmt: skip
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("imdb: error: cannot create MLFlowLogger: MlflowException: ")
        assert "MLFLOW_ALLOW_FILE_STORE" in line
        assert not (tmp_path / "run/sweep").exists()
