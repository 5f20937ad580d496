"""End to end, one test per task kind: `imdb fit`, `test`, `predict`, `export`, then `predict --model_dir`,
run as a user runs them, on a tiny random encoder and tiny tables."""

from __future__ import annotations

import csv
import json
import random
import re

import pytest

from tests.commands import CONFIGS, Server, imdb, pipeline_scores
from tests.conftest import NEGATIVE, POSITIVE, review

CKPT = "runs/lightning_logs/run/checkpoints/best.ckpt"
FP32 = ("--trainer.precision", "32-true")  # the checkpoint's and the export's batches pad alike


def fit(workdir, encoder, *extra):
    return imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", encoder, "--data.max_length", 32,
        "--data.batch_size", 4, "--trainer.max_epochs", 2, "--trainer.default_root_dir", "runs",
        "--trainer.logger.init_args.version", "run", *extra, cwd=workdir,
    )  # fmt: skip


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def predict_both_ways(workdir, *data, onnx: bool = False):
    """Predictions from the checkpoint and from its export, which must agree; with ``onnx``, the ONNX
    export's must agree with the export's as well."""
    imdb("predict", "--ckpt_path", CKPT, *data, "--output", "ckpt.jsonl", *FP32, cwd=workdir)
    imdb("export", "--ckpt_path", CKPT, "--output_dir", "exported", cwd=workdir)
    imdb("predict", "--model_dir", "exported", *data, "--output", "dir.jsonl", *FP32, cwd=workdir)
    if not onnx:
        return records(workdir / "ckpt.jsonl"), records(workdir / "dir.jsonl")
    imdb("export", "--ckpt_path", CKPT, "--output_dir", "onnx", "--format", "onnx", cwd=workdir)
    imdb("predict", "--model_dir", "onnx", *data, "--output", "onnx.jsonl", cwd=workdir)
    ours, exported, graph = (records(workdir / f"{name}.jsonl") for name in ("ckpt", "dir", "onnx"))
    assert [set(r) for r in graph] == [set(r) for r in exported]
    for mine, theirs in zip(graph, exported, strict=True):
        for key, value in theirs.items():
            assert mine[key] == (pytest.approx(value, abs=1e-4) if key in ("probs", "value", "score") else value)
    return ours, exported


def write_csv(path, header, rows):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def tagged(n, seed):
    """Reviews with a sentiment tag, and a ``music`` tag for those that mention it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        text = review(POSITIVE if positive else NEGATIVE, rng, 10) + (" music music" if i % 3 == 0 else "")
        rows.append((text, ["pos" if positive else "neg"] + (["music"] if i % 3 == 0 else [])))
    return rows


def test_multi_label_from_json_lists_end_to_end(tmp_path, tiny_encoder):
    train = "".join(json.dumps({"text": t, "label": labels}) + "\n" for t, labels in tagged(48, 0))
    (tmp_path / "tags.jsonl").write_text(train)
    write_csv(tmp_path / "tags.csv", ["text", "label"], [(t, "|".join(labels)) for t, labels in tagged(12, 1)])
    result = fit(
        tmp_path,
        tiny_encoder,
        "--data.train_file",
        "tags.jsonl",
        "--model.threshold",
        "tune",
        "--trainer.max_epochs",
        3,
        "--model.scheduler.init_args.max_lr",
        3e-3,
    )
    best = float(re.search(r"\(val_f1_micro=([\d.]+)\)", result.stdout)[1])
    validate = imdb("validate", "--ckpt_path", CKPT, cwd=tmp_path).stdout  # the same split, the saved thresholds
    assert abs(float(re.search(r"val_f1_micro\s*│\s*([\d.]+)", validate)[1]) - best) < 0.01
    test = imdb("test", "--ckpt_path", CKPT, "--data.test_file", "tags.csv", "--data.label_separator", "|",
                cwd=tmp_path)  # fmt: skip
    assert "test_f1_micro" in test.stdout and "test_exact_match" in test.stdout
    report = json.loads((tmp_path / "runs/lightning_logs/run/test/best/test_metrics.json").read_text())
    assert report["task"] == "multi_label" and report["label_names"] == ["music", "neg", "pos"]
    assert set(report["per_label"]) == {"music", "neg", "pos"} and report["per_label"]["music"]["support"] == 4
    assert len(report["thresholds"]) == 3 and report["thresholds"] != [0.5, 0.5, 0.5]  # tuned on validation
    assert (tmp_path / "runs/lightning_logs/run/test/best/precision_recall_curve.png").is_file()

    ours, exported = predict_both_ways(tmp_path, "--data.predict_file", "tags.csv")
    assert [r["line"] for r in ours] == list(range(1, 13)) and set(ours[0]) == {"line", "labels", "probs"}
    thresholds = json.loads((tmp_path / "exported/classifier.json").read_text())["thresholds"]
    assert thresholds == report["thresholds"]
    for record in ours:
        chosen = [
            name for name, t in zip(["music", "neg", "pos"], thresholds, strict=True) if record["probs"][name] >= t
        ]
        assert record["labels"] == chosen
    assert [r["labels"] for r in exported] == [r["labels"] for r in ours]
    config = json.loads((tmp_path / "exported/config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    texts = [t for t, _ in tagged(12, 1)]
    for record, scores in zip(ours, pipeline_scores(tmp_path / "exported", texts, trust_remote_code=True), strict=True):
        assert scores == pytest.approx(record["probs"], abs=1e-3)  # pipeline's sigmoids, as config.json says
    low = imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "tags.csv", "--model.threshold", "0",
               cwd=tmp_path).stdout  # fmt: skip
    assert all(r["labels"] == ["music", "neg", "pos"] for r in map(json.loads, low.splitlines()))


def test_regression_from_parquet_end_to_end(tmp_path, tiny_encoder):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(0)
    rows = [{"text": review(POSITIVE if r > 5 else NEGATIVE, rng, 10), "label": float(r)} for r in [1, 3, 8, 10] * 12]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "scores.parquet")
    fit_out = fit(tmp_path, tiny_encoder, "--data.train_file", "scores.parquet", "--data.task", "regression")
    assert "(val_mse=" in fit_out.stdout
    test = imdb("test", "--ckpt_path", CKPT, "--data.test_file", "scores.parquet", cwd=tmp_path)
    assert "SpearmanCorrcoef" not in fit_out.stderr + test.stderr  # torchmetrics' memory note, not the user's
    assert all(name in test.stdout for name in ("test_mse", "test_mae", "test_pearson", "test_spearman"))
    report_dir = tmp_path / "runs/lightning_logs/run/test/best"
    report = json.loads((report_dir / "test_metrics.json").read_text())
    assert report["task"] == "regression" and report["samples"] == 48 and report["label_names"] == ["label"]
    assert (report_dir / "predicted_vs_true.png").is_file()

    (tmp_path / "reviews.txt").write_text("great wonderful film\nawful boring plot\n")
    ours, exported = predict_both_ways(tmp_path, "--data.predict_file", "reviews.txt")
    assert [set(r) for r in ours] == [{"line", "value"}] * 2
    assert [r["value"] for r in exported] == pytest.approx([r["value"] for r in ours], abs=1e-4)  # scale folded in
    assert 0 < ours[0]["value"] < 12  # on the targets' scale, not the standardised one
    assert json.loads((tmp_path / "exported/config.json").read_text())["problem_type"] == "regression"
    plain = pipeline_scores(
        tmp_path / "exported", ["great wonderful film", "awful boring plot"], trust_remote_code=True
    )
    assert [s["label"] for s in plain] == pytest.approx([r["value"] for r in ours], abs=1e-3)  # the value itself
    imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "reviews.txt", "--output", "values.csv", cwd=tmp_path)
    assert (tmp_path / "values.csv").read_text().splitlines()[0] == "line,value"


def test_text_pairs_end_to_end(tmp_path, tiny_encoder):
    rng = random.Random(0)
    rows = []
    for i in range(48):
        same = i % 2 == 0
        first, second = (POSITIVE, POSITIVE) if same else (POSITIVE, NEGATIVE)
        rows.append((review(first, rng, 6), review(second, rng, 6), "same" if same else "different", f"p{i}"))
    write_csv(tmp_path / "pairs.csv", ["premise", "hypothesis", "label", "id"], rows)
    pair = ("--data.text_column", "[premise, hypothesis]")
    fit(tmp_path, tiny_encoder, "--data.train_file", "pairs.csv", *pair, "--model.head", "mlp")
    (tmp_path / "pairs.csv").rename(tmp_path / "test.csv")  # test and predict never read the training table
    test = imdb("test", "--ckpt_path", CKPT, "--data.test_file", "test.csv", cwd=tmp_path)  # the pair columns kept
    assert "test_acc" in test.stdout
    ours, exported = predict_both_ways(tmp_path, "--data.predict_file", "test.csv", "--data.id_column", "id", onnx=True)
    assert [r["id"] for r in ours] == [f"p{i}" for i in range(48)] and ours[0]["label"] in ("different", "same")
    assert [r["probs"] for r in exported] == [pytest.approx(r["probs"], abs=2e-6) for r in ours]
    assert json.loads((tmp_path / "exported/classifier.json").read_text())["text_column"] == ["premise", "hypothesis"]
    config = json.loads((tmp_path / "exported/config.json").read_text())  # the MLP on BERT: remote code
    assert config["architectures"] == ["MLPHeadForSequenceClassification"] and "auto_map" in config
    pairs = [{"text": premise, "text_pair": hypothesis} for premise, hypothesis, *_ in rows]
    for record, scores in zip(ours, pipeline_scores(tmp_path / "exported", pairs, trust_remote_code=True), strict=True):
        assert scores == pytest.approx(record["probs"], abs=1e-3)
    server = Server(tmp_path, "--model_dir", "onnx")  # a pair model serves pairs
    try:
        status, answer = server.post([[premise, hypothesis] for premise, hypothesis, *_ in rows[:3]])
    finally:
        server.stop()
    assert status == 200
    for served, predicted in zip(answer["predictions"], ours[:3], strict=True):
        assert served["label"] == predicted["label"] and served["probs"] == pytest.approx(predicted["probs"], abs=1e-4)
    (tmp_path / "lines.txt").write_text("one text\n")
    plain = imdb("predict", "--ckpt_path", CKPT, "--data.predict_file", "lines.txt", cwd=tmp_path, check=False)
    assert plain.returncode == 1
    assert "needs a table to predict" in plain.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("table", "args", "message"),
    [
        ("text,label\ngreat,a||b\ndull,c\n", ["--data.label_separator", "|"], "leaves an empty label in 'a||b'"),
        (
            "text,label\ngreat,high\ndull,3\n",
            ["--data.task", "regression"],
            "train.csv:2: target 'high' is not a number",
        ),
        ("text,label\ngreat,a\ndull,b\n", ["--model.class_weights", "[1, 2, 3]"], "gives 3 weights for 2 labels"),
        ("text,label\ngreat,a\ndull,b\n", ["--data.test_file", "test.csv"], "test data has label 'c', not one of"),
        ("text,label\ngreat,a\ndull,b\n", ["--data.text_column", "[text, other]"], "no column 'other'"),
    ],
)
def test_bad_task_input_is_one_line(tmp_path, tiny_encoder, table, args, message):
    header, rows = table.split("\n", 1)
    (tmp_path / "train.csv").write_text(header + "\n" + rows * 4)
    (tmp_path / "test.csv").write_text("text,label\nfine,c\n")
    command = "test" if "--data.test_file" in args else "fit"
    result = imdb(
        command, "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.train_file",
        "train.csv", "--data.max_length", 32, *args, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("imdb: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
