"""The README and the documentation site: short where they must be, current where they are generated,
and their commands runnable as written."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands import CONFIGS, imdb
from tests.conftest import NEGATIVE, POSITIVE

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GENERATED = DOCS / "reference" / "cli"
WRITTEN = sorted({*DOCS.rglob("*.md")} - {*GENERATED.glob("*.md")} | {README, ROOT / "CONTRIBUTING.md"})


def load(path: Path):
    """A generator script as a module, as `make reference` (docs/generate.py) loads it."""
    spec = importlib.util.spec_from_file_location("generate", DOCS / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    return generate.load(path)


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)


def commands(text: str) -> list[list[str]]:
    """Every `imdb SUBCOMMAND ...` line of the page's code blocks, continuation lines joined, as words."""
    found = []
    for block in code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0]
            if line.startswith("imdb: "):
                continue  # an error line, not a command
            match = re.search(r"(?:^|[\s|])(?:imdb|-m imdb_cli) (\w+)(.*)", line)
            if match:
                found.append([match[1], *shlex.split(match[2])])
    return found


def test_the_readme_is_a_first_five_minutes():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "make test" in text
    csv_quickstart = text.split("## Quickstart: your own CSV", 1)[1].split("\n## ", 1)[0]
    assert "--data.text_column review --data.label_column sentiment" in csv_quickstart
    for name in ("docs/index.md", "CHANGELOG.md", "CONTRIBUTING.md", "LICENSE"):
        assert f"]({name})" in text and (ROOT / name).is_file(), name


def test_the_cli_reference_is_current():
    """`make reference` regenerates it from `imdb SUB --help`. Lightning writes the trainer's part, which
    is compared only when the installed Lightning is the one the pages were made with."""
    cli_reference = load(DOCS / "cli_reference.py")
    for path, text in cli_reference.rendered().items():
        assert path.is_file(), f"{path.name} missing: run `make reference`"
        committed = path.read_text()
        if committed.splitlines()[2] != text.splitlines()[2]:  # the versions it was made with
            committed, text = cli_reference.without_trainer(committed), cli_reference.without_trainer(text)
        assert committed == text, f"{path.relative_to(ROOT)} is not current: run `make reference`"


def test_the_benchmark_pages_and_the_readme_results_are_current():
    """Rendered from bench/results/*.json by bench/pages.py: no figure typed by hand."""
    pages = load(ROOT / "bench" / "pages.py")
    for path, text in pages.rendered().items():
        assert path.is_file() and path.read_text() == text, f"{path.relative_to(ROOT)}: run `make reference`"


def test_every_figure_page_names_its_command_machine_and_date():
    for name in ("accuracy", "train-speed", "predict-speed", "onnx", "serving", "gpu", "lr-find"):
        text = (DOCS / "benchmarks" / f"{name}.md").read_text()
        assert "python bench/" in text and "**Date:** 20" in text and "**Machine:**" in text, name


@pytest.fixture(scope="module")
def options() -> dict[str, set[str]]:
    """Each subcommand's options, from the generated reference."""
    found = {}
    for page in GENERATED.glob("*.md"):
        flags = re.findall(r"^\| `([^`]+)`", page.read_text(), re.M)
        found[page.stem] = {word for flag in flags for word in flag.split() if word.startswith("-")}
    return found


@pytest.mark.parametrize("page", WRITTEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_commands_on_the_page_use_only_real_options(page, options):
    for words in commands(page.read_text()):
        subcommand, args = words[0], words[1:]
        assert subcommand in options, f"{page.name}: imdb {subcommand}"
        for arg in args:
            flag = arg.split("=", 1)[0]
            if not flag.startswith("--"):
                continue
            parts = flag.split(".")  # --model.optimizer.init_args.lr: an argument of --model.optimizer's class
            known = flag in options[subcommand] or any(
                ".".join(parts[:n]) in options[subcommand] for n in range(len(parts) - 1, 1, -1)
            )
            assert known, f"{page.name}: imdb {subcommand} has no option {flag}"


@pytest.mark.parametrize("page", WRITTEN, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_configs_the_page_names_exist(page):
    for path in re.findall(r"configs/[\w/]+\.yaml", page.read_text()):
        assert (ROOT / path).is_file(), f"{page.name}: {path}"


def test_make_docs_builds_the_site_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", tmp_path / "site"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "cli" / "fit" / "index.html").is_file()


def test_the_readme_csv_quickstart_runs_as_written(tmp_path, tiny_encoder):
    """The README's three commands on tables with its columns; the one change: the tiny test encoder."""
    section = README.read_text().split("## Quickstart: your own CSV", 1)[1].split("\n## ", 1)[0]
    sample, shell = code_blocks(section)[:2]
    header = sample.splitlines()[0].split(",")
    assert header == ["review", "sentiment"]
    words = {"positive": POSITIVE, "negative": NEGATIVE}
    for name, rows in (("train.csv", 12), ("test.csv", 4), ("new.csv", 3)):
        with open(tmp_path / name, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", *header] if name == "new.csv" else header)
            for i in range(rows):
                for label in words:
                    text = " ".join(words[label][(i + j) % len(words[label])] for j in range(4))
                    writer.writerow([f"r{i}{label[0]}", text, label] if name == "new.csv" else [text, label])
    lines = [line for line in shell.replace("\\\n", " ").splitlines() if line.startswith("imdb ")]
    assert [line.split()[1] for line in lines] == ["fit", "test", "predict"]
    for line in lines:
        args = [a.replace("configs/", f"{CONFIGS}/") for a in shlex.split(line)[1:]]
        if args[0] == "fit":
            args += ["--model.encoder", str(tiny_encoder), "--data.max_length", "16", "--data.batch_size", "4"]
        imdb(*args, cwd=tmp_path)
    records = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(records) == 6 and records[0].startswith('{"id": "r0p", "line": 1, "label": ')

    # An export carries the text column it was trained on, and its files get the umask's modes.
    ckpt = next(arg for arg in shlex.split(lines[-1]) if arg.endswith(".ckpt"))
    imdb("export", "--ckpt_path", ckpt, "--output_dir", "exported", cwd=tmp_path)
    exported = imdb("predict", "--model_dir", "exported", "--data.predict_file", "new.csv", "--data.id_column", "id",
                    cwd=tmp_path).stdout.splitlines()  # fmt: skip
    assert [json.loads(r)["label"] for r in exported] == [json.loads(r)["label"] for r in records]
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "exported").iterdir()}
    assert set(modes.values()) == {0o666 & ~mask} and "model.safetensors" in modes
