"""Input a user can get wrong, and files a user did not write: one clear line, never a traceback or code run."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch

from imdb_cli.cli import main
from tests.commands import CONFIGS, imdb


class CreatesAFile:
    """Unpickling this runs code: it creates the file ``path``."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.mark.parametrize("subcommand", ["test", "predict", "fit"])
def test_a_checkpoint_never_runs_code(tmp_path, subcommand):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"hyper_parameters": {"encoder": "x"}, "state_dict": {}, "payload": CreatesAFile(marker)}, ckpt)
    result = imdb(subcommand, "--ckpt_path", ckpt, "--data.predict_file", "-", cwd=tmp_path, check=False)
    assert not marker.exists()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"imdb: error: cannot read checkpoint {ckpt}" in result.stderr


def test_trainer_loads_checkpoints_weights_only(capsys):
    for subcommand in ("fit", "validate", "test", "predict"):
        with pytest.raises(SystemExit):
            main([subcommand, "--print_config"])
        assert "weights_only: true" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "missing.yaml"], "missing.yaml"),
        (["--config", "{bad}"], "encodr"),
        (["--data.batch_size", "many"], "batch_size"),
        (["--data.truncation", "middle"], "truncation"),
    ],
)
def test_bad_configs_get_the_parsers_message(tmp_path, capsys, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encodr: x\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *[a.format(bad=bad) for a in args], "--print_config"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_encoder, imdb_archive):
    workdir = tmp_path_factory.mktemp("safety")
    imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 32, "--trainer.limit_train_batches", 2, "--trainer.default_root_dir", "runs",
        "--trainer.logger.init_args.version", "run",
        cwd=workdir,
    )  # fmt: skip
    return workdir, "runs/lightning_logs/run/checkpoints/best.ckpt"


def predict(checkpoint, content: bytes, *extra, check=False):
    workdir, ckpt = checkpoint
    (workdir / "input.txt").write_bytes(content)
    result = imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", "input.txt", *extra, cwd=workdir, check=check)
    return result, [json.loads(line) for line in result.stdout.splitlines()]


def test_invalid_utf8_names_its_line_or_is_replaced_on_request(checkpoint):
    content = b"good film\n\n\xff\xfe\x00 binary junk\x80\nfine\n"
    result, records = predict(checkpoint, content)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "input.txt:3 is not valid UTF-8" in result.stderr
    _, records = predict(checkpoint, content, "--data.invalid_utf8", "replace", check=True)
    assert [r["line"] for r in records] == [1, 3, 4]


def test_bom_crlf_and_a_multi_megabyte_line(checkpoint):
    huge = ("great " * 400_000).encode()  # 2.4 MB on one line
    _, records = predict(checkpoint, b"\xef\xbb\xbfawful\r\n\r\n" + huge + b"\r\nboring", check=True)
    assert [r["line"] for r in records] == [1, 3, 4]


def test_a_directory_is_not_a_predict_file(checkpoint):
    workdir, ckpt = checkpoint
    result = imdb("predict", "--ckpt_path", ckpt, "--data.predict_file", ".", cwd=workdir, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "imdb: error: predict file . is a directory" in result.stderr


def test_same_config_and_seed_give_the_same_model_twice(tmp_path, tiny_encoder, imdb_archive):
    for run in ("a", "b"):
        imdb(
            "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder,
            "--data.source", imdb_archive, "--data.max_length", 32, "--trainer.default_root_dir", run,
            "--trainer.logger.init_args.version", "run", "--data.cache_tokens", "false",
            cwd=tmp_path,
        )  # fmt: skip
    a, b = (torch.load(tmp_path / r / "lightning_logs/run/checkpoints/best.ckpt", weights_only=True) for r in "ab")
    scores = [[s["best_model_score"] for k, s in c["callbacks"].items() if "BestCheckpoint" in k] for c in (a, b)]
    assert len(scores[0]) == 1 and scores[0] == scores[1]  # the same val_acc, as the checkpoint callback recorded it
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--data.batch_size", "0"), ("--data.val_fraction", "1.5"), ("--data.max_length", "-3"), ("--model.dropout", "2")],
)
def test_out_of_range_values_are_refused_by_the_parser(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", flag, value, "--print_config"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"imdb: error: {flag} {value!r} is not valid: expects ") and len(err.splitlines()) == 1


def test_max_length_beyond_the_encoder_is_one_clear_line(checkpoint, tiny_encoder, imdb_archive):
    workdir, _ = checkpoint
    result = imdb(
        "fit", "--model.encoder", tiny_encoder, "--data.source", imdb_archive, "--data.max_length", 1000,
        cwd=workdir, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "imdb: error: --data.max_length 1000 is more than" in result.stderr
