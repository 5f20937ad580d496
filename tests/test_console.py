"""What a user sees: the run's own lines, none of its libraries' adverts, deprecations or bars; help
that says what each command does in a sentence."""

from __future__ import annotations

import re

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from imdb_cli.cli import main
from tests.commands import CONFIGS, imdb

ALLOWED_STDERR = (
    r"imdb: tokenized \d+ \w+ texts.*",  # the token cache filled
    r"imdb: head fitted on the frozen encoder's vectors of \d+ texts, .*",  # --model.head_warm_start
    r"imdb: this hardware has no native bf16; training in full precision \(32-true\)",
    r"(Epoch|Sanity Checking|Validation|Testing|Predicting)\b.*",  # progress bars
    r"\s*(\w+_\w+: [\d.]+\s*)+",  # a progress bar's metrics
)


def stderr_lines(result) -> list[str]:
    """What a command printed on stderr, a line per bar refresh, without colours."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.stderr)
    return [line for line in re.split(r"[\r\n]+", text) if line.strip()]


def test_fit_test_predict_and_export_print_on_stderr_only_what_concerns_the_user(tmp_path, tiny_encoder, imdb_archive):
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 32, "--trainer.default_root_dir", "runs", cwd=tmp_path,
    )  # fmt: skip
    ckpt = "runs/lightning_logs/version_0/checkpoints/best.ckpt"
    (tmp_path / "reviews.txt").write_text("great film\n\nawful plot\nfine acting\n")
    results = [
        fit,
        imdb("test", "--ckpt_path", ckpt, cwd=tmp_path),
        imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "reviews.txt", "--output", "p.jsonl", cwd=tmp_path),
        imdb("export", "--ckpt_path", ckpt, "--output_dir", "export", cwd=tmp_path),
    ]
    for result in results:
        unexpected = [line for line in stderr_lines(result) if not any(re.fullmatch(a, line) for a in ALLOWED_STDERR)]
        assert unexpected == [], result.args
    summary = (
        r"^model: BertModel and mean-pooled linear head, [\d.]+ K parameters \([\d.]+ K frozen\)$"  # the unused pooler
    )
    assert re.search(summary, fit.stdout, re.M)
    assert "FLOPs" not in fit.stdout
    logged = EventAccumulator(str(tmp_path / "runs/lightning_logs/version_0")).Reload().Tags()["scalars"]
    assert "train_loss" in logged  # logged in an epoch shorter than log_every_n_steps
    bar = results[2].stderr + results[2].stdout
    assert "Predicting" in bar and "/--" not in bar and "1/1" in bar  # the bar knows its end: 3 texts, 1 batch


def test_help_says_what_each_command_does_in_a_sentence(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out.split("Available subcommands:", 1)[1]
    described = dict(re.findall(r"^    (\w+) +(.+(?:\n {24}.+)*)", listing, re.M))
    assert set(described) == {"fit", "validate", "test", "predict", "export", "serve", "sweep", "lr_find"}
    for command, text in described.items():
        assert " ".join(text.split()).endswith("."), command
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    titles = re.findall(r"^(\S.*):$", capsys.readouterr().out, re.M)
    assert "Lightning's Trainer (the settings below), with imdb's predict, test and export" in titles
