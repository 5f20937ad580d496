from types import SimpleNamespace

import torch
from torch import nn

from imdb_cli import heads, warm_start
from tests.commands import CONFIGS, imdb


def test_the_head_is_fitted_to_the_vectors_with_a_penalty_that_keeps_it_unsure():
    torch.manual_seed(0)
    vectors = torch.randn(24, 8)
    targets = (vectors[:, 0] > 0).long()
    for hidden in (0, 16):
        head = heads.mlp(8, hidden, 0.2, 2).train()
        before, after = warm_start.fit_head(head, nn.functional.cross_entropy, vectors, targets)
        assert after < before and head.training  # its mode is given back
        with torch.no_grad():
            assert (head.eval()(vectors).argmax(-1) == targets).all()
            assert after > 0.01  # not certain of every text: fine-tuning still has a gradient


def test_the_warm_start_pass_reads_each_text_s_first_tokens():
    seen = []

    class Model(nn.Module):
        device = torch.device("cpu")

        def transfer_batch_to_device(self, batch, device, dataloader_idx):
            return batch

        def get_outputs(self, input_ids, attention_mask, token_type_ids=None, weights=None):
            seen.append((input_ids.shape[1], int(attention_mask.sum())))
            return SimpleNamespace(pooled=input_ids[:, :1].float())

    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    batch = {"input_ids": torch.arange(12).view(2, 6) * mask, "attention_mask": mask, "labels": torch.tensor([0, 1])}
    vectors, targets = warm_start.embed(Model(), [batch], 10, 4)
    assert seen == [(4, 7)] and vectors.tolist() == [[0.0], [6.0]] and targets.tolist() == [0, 1]
    warm_start.embed(Model(), [batch], 10)
    assert seen[-1] == (6, 9)


def test_weights_are_cast_for_an_autocast_pass_and_the_module_s_own_left_alone():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 4))
    own = {name: (p, p.detach().clone()) for name, p in module.named_parameters()}
    ids = torch.arange(10).view(2, 5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        reference = module(ids).float()
        weights = warm_start.autocast_weights(module)
        low = torch.func.functional_call(module, weights, (ids,)).float()
    assert weights.keys() == own.keys() and {w.dtype for w in weights.values()} == {torch.bfloat16}
    assert torch.allclose(low, reference, atol=0.05) and not torch.equal(low, reference)
    for name, p in module.named_parameters():  # the same Parameter objects, unchanged (DDP hooks them)
        assert p is own[name][0] and p.dtype == torch.float32 and torch.equal(p, own[name][1])
    assert warm_start.autocast_weights(module) is None  # no autocast: nothing to cast to


def test_a_fit_starts_from_a_head_fitted_on_the_frozen_encoder(tmp_path, tiny_encoder, imdb_archive):
    fit = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 16, "--data.batch_size", 4, "--model.head", "mlp", "--model.pooling", "mean",
        "--model.head_hidden", 0, "--model.head_warm_start", 10, "--trainer.max_steps", 2, cwd=tmp_path,
    )  # fmt: skip
    assert "imdb: head fitted on the frozen encoder's vectors of 10 texts, loss " in fit.stderr
    auto = imdb(
        "fit", "--config", CONFIGS / "minilm.yaml", "--model.encoder", tiny_encoder, "--data.source", imdb_archive,
        "--data.max_length", 16, "--model.head", "auto", "--model.pooling", "cls", "--model.head_warm_start", 10,
        "--trainer.max_steps", 1, cwd=tmp_path,
    )  # fmt: skip
    assert "imdb: --model.head_warm_start is for the mlp head: an auto head starts as initialised" in auto.stderr
