import json
from types import SimpleNamespace

import pytest
import torch

from imdb_cli.errors import UserError
from imdb_cli.predict import PredictionWriter
from imdb_cli.tasks import build_task

MODULE = SimpleNamespace(
    label_names=["negative", "positive"], task=build_task("classification", ["negative", "positive"])
)
ONE = SimpleNamespace(world_size=1, global_rank=0)  # a single-process trainer


def run(writer, *batches):
    writer.on_predict_start(ONE, MODULE)
    start = 0
    for lines, probs in batches:
        index = torch.arange(start, start + len(lines))
        start += len(lines)
        prediction = {"index": index, "line": torch.tensor(lines), "scores": torch.tensor(probs)}
        writer.write_on_batch_end(ONE, MODULE, prediction, None, None, 0)
    writer.on_predict_end(ONE, MODULE)


def test_jsonl_records(tmp_path):
    out = tmp_path / "p.jsonl"
    run(PredictionWriter(str(out)), ([1, 3], [[0.2, 0.8], [0.9, 0.1]]), ([4], [[0.5, 0.5]]))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 3, 4]
    assert records[0] == {"line": 1, "label": "positive", "score": 0.8, "probs": {"negative": 0.2, "positive": 0.8}}
    assert records[1]["label"] == "negative"


def test_csv_records(tmp_path):
    out = tmp_path / "p.csv"
    run(PredictionWriter(str(out)), ([2], [[0.25, 0.75]]))
    assert out.read_text().splitlines() == ["line,label,score,prob_negative,prob_positive", "2,positive,0.75,0.25,0.75"]


def test_stdout(capsys):
    run(PredictionWriter(None), ([1], [[0.6, 0.4]]))
    assert json.loads(capsys.readouterr().out)["label"] == "negative"


def test_no_records_is_an_error_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "p.jsonl"
    out.write_text("previous results\n")
    with pytest.raises(UserError, match="no non-blank lines"):
        run(PredictionWriter(str(out)))
    assert out.read_text() == "previous results\n"
    assert list(tmp_path.iterdir()) == [out]


def test_a_failed_run_keeps_the_old_file(tmp_path):
    out = tmp_path / "p.jsonl"
    out.write_text("previous results\n")
    writer = PredictionWriter(str(out))
    writer.on_predict_start(ONE, MODULE)
    writer.write(1, [0.1, 0.9])
    writer.on_exception(ONE, MODULE, RuntimeError("boom"))
    assert out.read_text() == "previous results\n"
    assert list(tmp_path.iterdir()) == [out]


def test_records_sorted_by_length_come_out_in_input_order(tmp_path):
    out = tmp_path / "p.jsonl"
    writer = PredictionWriter(str(out))
    writer.on_predict_start(ONE, MODULE)
    for indices, lines in (([2, 0], [5, 1]), ([3], [6]), ([1], [2])):
        prediction = {"index": torch.tensor(indices), "line": torch.tensor(lines), "scores": torch.rand(len(lines), 2)}
        writer.write_on_batch_end(ONE, MODULE, prediction, None, None, 0)
    writer.on_predict_end(ONE, MODULE)
    assert [json.loads(line)["line"] for line in out.read_text().splitlines()] == [1, 2, 5, 6]


def test_copied_columns_lead_each_record(tmp_path):
    trainer = SimpleNamespace(world_size=1, global_rank=0, datamodule=SimpleNamespace(hparams={"id_column": "id"}))
    for name in ("p.jsonl", "p.csv"):
        writer = PredictionWriter(str(tmp_path / name))
        writer.on_predict_start(trainer, MODULE)
        prediction = {
            "index": torch.tensor([1, 0]),
            "line": torch.tensor([3, 1]),
            "scores": torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
        }
        writer.write_on_batch_end(trainer, MODULE, prediction | {"copied": [{"id": "b"}, {"id": "a"}]}, None, None, 0)
        writer.on_predict_end(trainer, MODULE)
    records = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [(r["id"], r["line"], r["label"]) for r in records] == [("a", 1, "positive"), ("b", 3, "negative")]
    assert list(records[0]) == ["id", "line", "label", "score", "probs"]
    assert (tmp_path / "p.csv").read_text().splitlines()[:2] == [
        "id,line,label,score,prob_negative,prob_positive",
        "a,1,positive,0.8,0.2,0.8",
    ]


def test_embeddings_follow_the_probabilities(tmp_path):
    module = SimpleNamespace(
        label_names=["negative", "positive"],
        task=MODULE.task,
        embedding_width=2,
    )
    writer = PredictionWriter(str(tmp_path / "p.jsonl"), embeddings=True)
    writer.on_predict_start(ONE, module)
    prediction = {"index": torch.tensor([0]), "line": torch.tensor([1]), "scores": torch.tensor([[0.2, 0.8]])}
    writer.write_on_batch_end(ONE, module, prediction | {"embedding": torch.tensor([[0.5, -1.25]])}, None, None, 0)
    writer.on_predict_end(ONE, module)
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert record["embedding"] == [0.5, -1.25] and list(record)[-1] == "embedding"
