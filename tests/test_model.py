import json

import pytest
import torch

from imdb_cli.cpu import attention
from imdb_cli.cpu.dropout import Dropout
from imdb_cli.errors import UserError
from imdb_cli.model import SentimentClassifier
from tests.commands import CONFIGS, imdb


def make(tiny_encoder, **kwargs) -> SentimentClassifier:
    model = SentimentClassifier(encoder=str(tiny_encoder), **kwargs)
    model.configure_model()
    return model


def batch(n=3, width=7):
    ids = torch.randint(5, 30, (n, width))
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    return ids, mask


def test_head_gives_one_logit_per_label(tiny_encoder):
    model = make(tiny_encoder, label_names=["a", "b", "c"], head_hidden=16)
    assert model(*batch()).shape == (3, 3)
    first, _, _, last = model.head
    assert (first.in_features, first.out_features, last.out_features) == (32, 16, 3)


def test_get_outputs_returns_token_states_and_cls_vector(tiny_encoder):
    model = make(tiny_encoder).eval()
    outputs = model.get_outputs(*batch(2, 5))
    assert outputs.hidden_states.shape == (2, 5, 32)
    assert torch.equal(outputs.cls, outputs.hidden_states[:, 0])
    assert torch.equal(outputs.pooled, outputs.cls)


def test_mean_pooling_averages_the_tokens_the_mask_keeps(tiny_encoder):
    model = make(tiny_encoder, pooling="mean").eval()
    ids, mask = batch(2, 6)
    outputs = model.get_outputs(ids, mask)
    torch.testing.assert_close(outputs.pooled[0], outputs.hidden_states[0, :4].mean(0))
    torch.testing.assert_close(outputs.pooled[1], outputs.hidden_states[1].mean(0))
    logits, pooled = model.logits_and_cls(ids, mask)
    torch.testing.assert_close(logits, model.head(outputs.pooled))
    torch.testing.assert_close(pooled, outputs.pooled)


def test_an_auto_head_reads_its_own_vector_whatever_the_pooling(tiny_encoder):
    """The shipped config's ``pooling: mean`` leaves ``--model.head auto`` (and a trained classifier's
    own head) as transformers builds it."""
    ids, mask = batch()
    logits = []
    for pooling in ("cls", "mean"):
        torch.manual_seed(0)  # the same new head
        logits.append(make(tiny_encoder, head="auto", pooling=pooling).eval()(ids, mask))
    torch.testing.assert_close(*logits)


def test_encoder_trains_with_dropout_on(tiny_encoder):
    model = make(tiny_encoder)
    assert model.encoder.training


@pytest.mark.parametrize("head", ["mlp", "auto"])
def test_the_model_trains_with_the_cpu_kernels(tiny_encoder, head):
    model = make(tiny_encoder, head=head)
    assert model.classifier_or_encoder.config._attn_implementation == attention.NAME
    kinds = {type(m) for m in model.modules()}
    assert Dropout in kinds and torch.nn.Dropout not in kinds


def test_balanced_class_weights_are_inverse_frequencies():
    from imdb_cli.tasks.single_label import balanced_weights as class_weights

    weights = class_weights("balanced", [0] * 95 + [1] * 5, ["common", "rare"])
    assert weights.tolist() == pytest.approx([100 / 190, 100 / 10])
    assert class_weights([1.0, 3.0], [0, 1], ["a", "b"]).tolist() == [1.0, 3.0]
    with pytest.raises(UserError, match="gives 3 weights for 2 labels"):
        class_weights([1.0, 2.0, 3.0], [0, 1], ["a", "b"])
    with pytest.raises(UserError, match="label 'b' has no training texts"):
        class_weights("balanced", [0, 0], ["a", "b"])


def test_fit_with_balanced_weights_and_a_report_per_class(tmp_path, tiny_encoder):
    rows = ["text,label"] + [f"great wonderful film {i},common" for i in range(40)]
    rows += [f"awful boring plot {i},rare" for i in range(8)]
    (tmp_path / "skewed.csv").write_text("\n".join(rows) + "\n")
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.train_file", "skewed.csv",
        "--data.test_file", "skewed.csv", "--data.max_length", 16, "--data.batch_size", 8,
        "--model.class_weights", "balanced", "--trainer.default_root_dir", "runs",
        "--trainer.logger.init_args.version", "run", cwd=tmp_path,
    )  # fmt: skip
    assert "best.ckpt (val_f1=" in fit.stdout  # macro F1 chooses, not accuracy, when the classes are balanced
    imdb("test", "--ckpt_path", "runs/lightning_logs/run/checkpoints/best.ckpt", cwd=tmp_path)
    report = json.loads((tmp_path / "runs/lightning_logs/run/test/best/test_metrics.json").read_text())
    assert report["per_class"]["rare"]["support"] == 8 and set(report["per_class"]) == {"common", "rare"}
    wrong = imdb("fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.train_file",
                 "skewed.csv", "--model.class_weights", "[1, 2, 3]", cwd=tmp_path, check=False)  # fmt: skip
    assert wrong.returncode == 1 and wrong.stderr.splitlines()[-1] == (
        "imdb: error: --model.class_weights gives 3 weights for 2 labels (common, rare): "
        "give one per label, in that order, or balanced"
    )


def test_settings_are_saved_as_plain_values():
    from jsonargparse.typing import ClosedUnitInterval, PositiveInt

    from imdb_cli.model import plain

    saved = plain({"dropout": ClosedUnitInterval(0.1), "sizes": [PositiveInt(3)], "compile": True, "name": None})
    assert saved == {"dropout": 0.1, "sizes": [3], "compile": True, "name": None}
    assert [type(v) for v in (saved["dropout"], saved["sizes"][0], saved["compile"])] == [float, int, bool]


def test_a_fused_optimizer_clips_by_norm_under_bf16_autocast(tiny_encoder):
    """Lightning refuses to clip for a fused optimizer under mixed precision (fp16's loss scaling); bf16
    has no scaling, and the model clips itself, as the shipped config's fused Adam needs."""
    from types import SimpleNamespace

    from pytorch_lightning.plugins import MixedPrecision
    from pytorch_lightning.strategies import SingleDeviceStrategy

    model = SentimentClassifier(encoder=str(tiny_encoder))
    model.configure_model()
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    ids = torch.randint(5, 40, (4, 12))
    (100 * model(ids, torch.ones_like(ids))).sum().backward()

    def grad_norm() -> float:
        return float(
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]))
        )

    strategy = SingleDeviceStrategy(torch.device("cpu"))
    model._trainer = SimpleNamespace(strategy=strategy, precision_plugin=MixedPrecision("bf16-mixed", "cpu"))
    assert grad_norm() > 1.0
    params = [p for p in model.parameters() if p.grad is not None]
    unclipped = [p.grad.clone() for p in params]
    model.configure_gradient_clipping(optimizer, 1e9, "norm")  # under the limit: untouched
    assert all(torch.equal(p.grad, g) for p, g in zip(params, unclipped, strict=True))
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for copy, grad in zip(copies, unclipped, strict=True):
        copy.grad = grad.clone()
    torch.nn.utils.clip_grad_norm_(copies, 1.0)
    model.configure_gradient_clipping(optimizer, 1.0, "norm")
    assert grad_norm() <= 1.0 + 1e-5
    assert all(torch.equal(p.grad, c.grad) for p, c in zip(params, copies, strict=True))  # as torch's clip_grad_norm_
    optimizer.step()
