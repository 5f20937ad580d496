"""A mistake in the command line or a config file is one line naming the option and what it accepts, exit 1."""

from __future__ import annotations

import typing

import pytest
from jsonargparse.typing import PositiveInt

from imdb_cli.cli import main
from imdb_cli.param_groups import LayerDecay
from imdb_cli.schedules import Share
from imdb_cli.usage import describe

MISTAKES = [
    (
        ["fit", "--data.batch_sise", "3"],
        "imdb fit has no option --data.batch_sise; did you mean --data.batch_size? (see imdb fit --help)",
    ),
    (
        ["test", "--data.batch_size", "many"],
        "--data.batch_size 'many' is not valid: expects an integer >0 (see imdb test --help)",
    ),
    (
        ["fit", "--data.truncation=middle"],
        "--data.truncation 'middle' is not valid: expects one of head, tail, head_tail (see imdb fit --help)",
    ),
    (
        ["fit", "--trainer.max_epochs", "x"],
        "--trainer.max_epochs 'x' is not valid: expects an integer or null (see imdb fit --help)",
    ),
    (
        ["fit", "--model.scheduler", "transformers.get_linear_schedule_with_warmup"],
        "--model.scheduler 'transformers.get_linear_schedule_with_warmup' is not valid: expects a subclass of "
        "LRScheduler or ReduceLROnPlateau, by name or import path or null (see imdb fit --help)",
    ),
    (
        ["fit", "--config", "{bad}"],
        "imdb fit has no setting model.encodr (in a config file); did you mean model.encoder? (see imdb fit --help)",
    ),
    (["fit", "--config", "missing.yaml"], "--config: File does not exist: '{missing}' (see imdb fit --help)"),
    (
        ["fitt"],
        "no command 'fitt': choose from fit, validate, test, predict, export, serve, sweep, lr_find (see imdb --help)",
    ),
    (["export"], "imdb export needs --ckpt_path and --output_dir (see imdb export --help)"),
    (["fit", "--output", "x.jsonl"], "--output is an option of imdb predict, not of imdb fit"),
    (
        ["fit", "--model.layer_lr_decay", "1.5"],
        "--model.layer_lr_decay '1.5' is not valid: expects a number >0 and ≤1 (see imdb fit --help)",
    ),
]


@pytest.mark.parametrize(("args", "line"), MISTAKES, ids=[" ".join(args) for args, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys, args, line):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("model:\n  encodr: x\n")
    args = [a.format(bad=tmp_path / "bad.yaml") for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"imdb: error: {line.format(missing=tmp_path / 'missing.yaml')}"]


def test_types_in_words():
    assert describe(typing.Literal["a", "b"] | None) == "one of a, b or null"
    assert describe(PositiveInt | None) == "an integer >0 or null"
    assert describe(bool) == "true or false"
    assert describe(list[str]) == "a list such as [a, b]"
    assert describe(Share) == "a number ≥0 and <1"  # restricted types of our own, without a docstring
    assert describe(LayerDecay | None) == "a number >0 and ≤1 or null"
