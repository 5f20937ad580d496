"""What a user sees: the run's own lines, none of its libraries' adverts, deprecations or bars; help
that says what each command does in a sentence."""

from __future__ import annotations

import re

import pytest

from imdb_cli.cli import main
from tests.commands import CONFIGS, imdb

NOISE = (
    "💡",  # litlogger / litmodels adverts
    "LeafSpec",  # a torch deprecation inside Lightning
    "Loading weights",  # transformers' bar
    "Be aware that when using `ckpt_path`",
    "No positive samples",  # torchmetrics on the sanity check's few batches
    "v_num",
    "not supported by the model summary",
    "estimate number of stepping batches",
)


def test_fit_and_test_print_no_library_chatter(tmp_path, tiny_encoder, imdb_archive):
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 32, "--trainer.default_root_dir", "runs", "--trainer.logger.init_args.version", "run",
        cwd=tmp_path,
    )  # fmt: skip
    test = imdb("test", "--ckpt_path", "runs/lightning_logs/run/checkpoints/best.ckpt", cwd=tmp_path)
    for result in (fit, test):
        output = result.stdout + result.stderr
        assert [noise for noise in NOISE if noise in output] == []


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
