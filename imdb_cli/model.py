"""The classifier: a pretrained encoder and a head (:mod:`imdb_cli.heads`), trained with Lightning."""

from __future__ import annotations

import math
import sys
from typing import Literal, NamedTuple

import pytorch_lightning as pl
import torch
from jsonargparse.typing import ClosedUnitInterval, NonNegativeInt, PositiveFloat, PositiveInt
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanMetric

from imdb_cli import encoders, heads, warm_start
from imdb_cli.checkpoints import read_checkpoint
from imdb_cli.cpu.attention import use_fast_attention
from imdb_cli.cpu.dropout import use_fast_dropout
from imdb_cli.deploy.onnx_runtime import OnnxClassifier, is_onnx_export, onnx_fit_message
from imdb_cli.errors import UserError
from imdb_cli.param_groups import LayerDecay, apply_lr_scales, check_resumed_groups, parameter_groups
from imdb_cli.schedules import build_scheduler, check_resumed_length
from imdb_cli.tasks import TaskName, build_task
from imdb_cli.tasks.balancing import balances_classes


class EncoderOutputs(NamedTuple):
    """What ``get_outputs`` returns: every token's last-layer embedding, the [CLS] vector, and the
    vector the head classifies."""

    hidden_states: torch.Tensor
    """``(batch, tokens, width)`` last hidden layer; padded positions are meaningless."""
    cls: torch.Tensor
    """``(batch, width)`` the first token's vector."""
    pooled: torch.Tensor
    """``(batch, width)`` what the ``mlp`` head reads (``pooling``): the [CLS] vector, or the mean of the tokens'."""


class SentimentClassifier(pl.LightningModule):
    """Fine-tune a transformer encoder for text classification or regression.

    The head is the reference IMDB recipe's (the first, [CLS], token of the encoder's last hidden
    layer through Linear → ReLU → Dropout → Linear) or the one transformers builds for the encoder's
    architecture (``head``); it has one output per label, or 1 for a regression. What the outputs
    mean (softmax, one sigmoid per label, a number), the loss and the metrics belong to the task
    (:mod:`imdb_cli.tasks`).
    The encoder is built in ``configure_model`` (not ``__init__``), with pretrained weights only
    when no checkpoint is about to replace them. An ONNX export (``imdb export --format onnx``)
    runs in ONNX Runtime instead, for predict, test and serve: encoder and head are one graph there.

    Args:
        encoder: Hugging Face Hub id, local directory, or ``pkg://PACKAGE/DIR`` of a packaged model.
            A trained sequence classifier (written by ``imdb export``, or by ``save_pretrained`` of
            any ``*ForSequenceClassification``) brings its head and label names along.
        head: ``mlp``: the reference recipe's head ([CLS] → Linear → ReLU → Dropout → Linear; on
            DistilBERT, its own ``DistilBertForSequenceClassification``). ``auto``: the head
            ``AutoModelForSequenceClassification`` builds for the encoder's architecture (BERT and
            MiniLM: the pooler, dropout and a Linear), whose export every Hugging Face tool loads
            without remote code. ``null``: ``auto`` for a trained classifier, else ``mlp``.
        label_names: class names in label-id order; linked from the data, not set on its own.
        task_kind: ``classification``, ``multi_label`` or ``regression``; linked from the data (its
            ``task``, and its labels), not set on its own.
        head_hidden: ``mlp`` head only: width of its hidden layer; by default the encoder's width.
            0: no hidden layer, the vector through dropout and one Linear (a linear classifier, as
            setfit's logistic regression: with a few dozen labels, the better start).
        pooling: ``mlp`` head only (an ``auto`` head reads its own): the vector it reads.
            ``cls``: the first token's, as in the reference recipe. ``mean``: the mean of the
            text's token vectors, the sentence embedding sentence-transformers models
            (all-MiniLM-L6-v2 among them) were trained to give, and what setfit classifies: better
            than [CLS] from a few dozen labelled texts (docs/guides/small-data.md). Its export
            loads with ``trust_remote_code``.
        head_warm_start: ``mlp`` head only (an ``auto`` head, and FSDP, skip it): before
            fine-tuning, fit the new head on the frozen encoder's vectors of up to this many
            training texts (one pass of the encoder over them, then a few hundred steps of the head
            alone), so that fine-tuning starts from a trained head instead of a random one: linear
            probing, then fine-tuning. It matters most with few labels (CHANGELOG, 2026-12-05).
            0: the head starts at random. Not when resuming, nor for a head that was trained already.
        head_warm_start_length: tokens of each text that the warm start's pass reads, the first
            ones; by default as many as training reads (``data.max_length``). A sentence-embedding
            model's vectors are those of its own length: all-MiniLM-L6-v2 embeds up to 256 word
            pieces (its sentence-transformers ``max_seq_length``), and at 512 tokens the pass then
            reads about a fifth fewer tokens and takes two thirds of the time.
        dropout: dropout probability in the head: between the ``mlp`` head's two layers, before an
            ``auto`` head's output layer (its config's ``classifier_dropout``).
        attention_dropout: dropout on the encoder's attention probabilities while fine-tuning;
            ``null`` keeps the pretrained config's (0.1 for BERT and DistilBERT). At 0, PyTorch
            runs attention as one fused kernel instead of materialising every token pair's
            probability and dropout mask: much faster training at the same accuracy (docs:
            benchmarks/train-speed.md).
        optimizer: optimizer class and its arguments (``torch.optim.AdamW`` with ``weight_decay``, say).
            It gets the weights in groups: biases and LayerNorm weights never take weight decay.
        head_lr_scale: the head's learning rate as a multiple of the encoder's (of the optimizer's
            ``lr``, or of the scheduler's ``max_lr``): a new, randomly initialised head may take
            larger steps than pretrained weights.
        layer_lr_decay: layer-wise learning-rate decay: each encoder layer trains at this share of
            the rate of the layer above it, the top layer at the full rate and the embeddings
            lowest (Sun et al. 2019 used 0.95 on IMDB). 1 trains every layer alike.
        scheduler: learning-rate scheduler, stepped every optimizer step; OneCycleLR and
            ``WarmupDecay`` (linear warmup, then linear decay: the Hugging Face Trainer's) get
            ``total_steps`` from the trainer. ``ReduceLROnPlateau`` steps once per epoch on
            ``val_loss``. ``null`` keeps the learning rate constant.
        compile: compile the encoder with ``torch.compile`` (dynamic shapes: batches vary in length).
        class_weights: weights of the classes in the training loss, for imbalanced data:
            ``balanced`` (each class weighs the inverse of its share of the training split, as in
            scikit-learn) or one weight per label, in label order. Validation and test losses stay
            unweighted; watch ``val_f1`` (macro) rather than ``val_acc`` on such data. Multi-label:
            each label's positive texts weigh ``balanced`` (negatives per positive, BCE's
            ``pos_weight``) or the weight given.
        threshold: multi-label only: the probability from which a label is predicted, one for all
            labels or one per label; ``tune`` chooses each label's on the validation split after every
            validation (the F1-best of 0, 0.01, ..., 1). Saved in checkpoints and exports; given with
            ``--ckpt_path``, it replaces the checkpoint's.
    """

    def __init__(
        self,
        encoder: str = "distilbert-base-uncased",
        label_names: list[str] | None = None,
        head: heads.HeadKind | None = None,
        head_hidden: NonNegativeInt | None = None,
        pooling: heads.Pooling = "cls",
        head_warm_start: NonNegativeInt = 0,
        head_warm_start_length: PositiveInt | None = None,
        dropout: ClosedUnitInterval = 0.2,
        attention_dropout: ClosedUnitInterval | None = 0.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        head_lr_scale: PositiveFloat = 1.0,
        layer_lr_decay: LayerDecay = 1.0,
        scheduler: LRSchedulerCallable | None = {
            "class_path": "torch.optim.lr_scheduler.OneCycleLR",
            "init_args": {"max_lr": 5e-5},
        },
        compile: bool = False,
        class_weights: Literal["balanced"] | list[PositiveFloat] | None = None,
        task_kind: TaskName = "classification",
        threshold: ClosedUnitInterval | list[ClosedUnitInterval] | Literal["tune"] = 0.5,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.label_names = list(label_names or ["negative", "positive"])
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.encoder: nn.Module | None = None  # the mlp head's encoder
        self.head: nn.Module | None = None  # the mlp head
        self.classifier: nn.Module | None = None  # an auto head's whole *ForSequenceClassification
        self.runtime: OnnxClassifier | None = None
        self.task = build_task(task_kind, self.label_names, threshold)
        metrics = self.task.metrics()
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        # Weighted sums synced over ranks. Lightning's own mean of a logged tensor averages the
        # batch-size count in integer arithmetic under DDP (61 samples on 2 ranks count as 60):
        # Lightning-AI/pytorch-lightning#21859.
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def configure_model(self) -> None:
        """Build the encoder and head once, in the strategy's context (Lightning calls this)."""
        if self.backbone is None and self.runtime is None:
            restoring = self._trainer is not None and self.trainer.ckpt_path is not None
            self.build(pretrained=not restoring)

    def build(self, pretrained: bool = True) -> None:
        """The encoder and head: with the encoder's weights (and an exported head's) when
        ``pretrained``, or only the architecture when a checkpoint's weights will replace them.
        An ONNX export becomes an ONNX Runtime session instead."""
        hp = self.hparams
        if pretrained and is_onnx_export(encoders.resolve(hp.encoder)):
            if self._trainer is not None and self.trainer.state.fn == "fit":
                raise UserError(onnx_fit_message(hp.encoder))
            self.runtime = OnnxClassifier(encoders.resolve(hp.encoder))
            self._check_max_length(self.runtime.config)
            return
        config = encoders.load_config(hp.encoder, hp.attention_dropout)
        if hp.head is None:  # resolved once, so that checkpoints record the head they hold
            self.hparams.head = heads.default_kind(config)
        self._check_max_length(config)
        self._trained_head = False
        if hp.head == "auto":
            self._trained_head = pretrained and heads.is_trained_classifier(config)
            if self._trained_head:
                heads.check_labels(config, hp.encoder, self.label_names, self.task.name == "regression")
            self.classifier = heads.build_auto(hp.encoder, config, pretrained, self.task.out_features, hp.dropout)
        else:
            self._build_mlp(pretrained, config)
        self.classifier_or_encoder.train()
        self._segments = encoders.takes_segments(self.classifier_or_encoder)
        if hp.compile:
            self.backbone.compile(dynamic=True)  # in place: parameter names, and checkpoints, stay the same
        else:  # Inductor generates its own kernels for both
            use_fast_attention(self.classifier_or_encoder)
            use_fast_dropout(self)

    def _build_mlp(self, pretrained: bool, config) -> None:
        hp = self.hparams
        self.encoder = encoders.load_encoder(hp.encoder, pretrained, hp.attention_dropout)
        # The head reads the last hidden layer, never the pooler: frozen, DDP expects no gradient for it.
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)
        hidden = self.encoder.config.hidden_size if hp.head_hidden is None else hp.head_hidden
        self.head = heads.mlp(self.encoder.config.hidden_size, hidden, hp.dropout, self.task.out_features)
        trained = heads.trained_mlp(encoders.resolve(hp.encoder)) if pretrained else None
        self._trained_head = trained is not None
        if trained is not None:
            if heads.is_trained_classifier(config):
                heads.check_labels(config, hp.encoder, self.label_names, self.task.name == "regression")
            try:
                self.head.load_state_dict(trained)
            except RuntimeError:
                raise UserError(
                    f"the head trained in {hp.encoder} does not fit {self.num_labels} labels "
                    f"({', '.join(self.label_names)}) and width {hidden}: use --model_dir {hp.encoder}"
                ) from None

    @property
    def backbone(self) -> nn.Module | None:
        """The encoder, whichever head is on it."""
        return self.classifier.base_model if self.classifier is not None else self.encoder

    @property
    def classifier_or_encoder(self) -> nn.Module:
        """The module whose forward reads the tokens: the whole classifier (``auto``) or the encoder."""
        return self.classifier if self.classifier is not None else self.encoder

    @property
    def head_module(self) -> nn.Module:
        """The head's weights, whichever kind: the MLP, or the classifier's modules outside its encoder."""
        return self.head if self.classifier is None else heads.head_modules(self.classifier)

    def _check_max_length(self, config) -> None:
        """Texts longer than the encoder's position table would fail deep inside it: say so first."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        max_length = getattr(datamodule, "hparams", {}).get("max_length")
        positions = getattr(config, "max_position_embeddings", None)
        if max_length and positions and max_length > positions:
            limit = f"encoder {self.hparams.encoder} can read ({positions} tokens)"
            raise UserError(f"--data.max_length {max_length} is more than {limit}")

    def load_trained(self, ckpt_path: str | None, weights_only: bool = True) -> dict | None:
        """Build the model for inference outside Lightning's loops (export, serve): with the weights
        of checkpoint ``ckpt_path``, or without one as ``encoder`` is (an export). Returns the checkpoint."""
        if ckpt_path is None:
            self.build(pretrained=True)
            self.eval()
            return None
        checkpoint = read_checkpoint(ckpt_path, weights_only=weights_only)
        self.build(pretrained=False)
        saved = checkpoint.get("hyper_parameters", {})
        self.check_fits(checkpoint["state_dict"], saved.get("encoder"))
        state_dict = dict(checkpoint["state_dict"])
        self.task.load_overrides(state_dict, saved)
        self.load_state_dict(state_dict)
        self.eval()
        return checkpoint

    @property
    def embedding_width(self) -> int:
        """The width of the vectors the head reads."""
        return (self.runtime or self.backbone).config.hidden_size

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Lightning calls this before it loads the weights: a checkpoint of another encoder or head
        (``--model.encoder`` given beside ``--ckpt_path``) is one line, not a size-mismatch traceback."""
        if "FSDP" not in type(self.trainer.strategy).__name__:  # FSDP's own view of the weights is sharded
            saved = checkpoint.get("hyper_parameters", {})
            self.check_fits(checkpoint["state_dict"], saved.get("encoder"))
            self.task.load_overrides(checkpoint["state_dict"], saved)
            if self.trainer.state.fn == "fit" and checkpoint.get("optimizer_states"):
                check_resumed_groups(checkpoint["optimizer_states"][0], self.parameter_groups(), self.trainer.ckpt_path)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Settings as plain numbers: jsonargparse gives ``--model.dropout 0.1`` as a ``float`` subclass,
        which ``torch.load(weights_only=True)`` would refuse to read back."""
        for key in ("hyper_parameters", "datamodule_hyper_parameters"):
            if key in checkpoint:
                checkpoint[key] = plain(checkpoint[key])

    def check_fits(self, state_dict: dict[str, torch.Tensor], trained_encoder: str | None) -> None:
        """Refuse weights whose names or shapes differ from this model's."""
        own = self.state_dict()
        for name, tensor in own.items():
            theirs = state_dict.get(name)
            if theirs is None or theirs.shape != tensor.shape:
                found = "missing" if theirs is None else f"of shape {tuple(theirs.shape)}"
                raise UserError(
                    f"the checkpoint does not fit encoder {self.hparams.encoder} with {self.num_labels} labels "
                    f"({name} is {found}, not {tuple(tensor.shape)}): it was trained with encoder {trained_encoder}; "
                    "leave --model.encoder out to use it"
                )

    def get_outputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        weights: dict[str, torch.Tensor] | None = None,
    ) -> EncoderOutputs:
        """The encoder's last hidden layer, [CLS] vector and pooled vector, for embeddings and
        downstream use. ``token_type_ids`` are a text pair's segment ids, on encoders that have them;
        ``weights``, tensors by parameter name to run the encoder with in place of its own
        (``torch.func.functional_call``)."""
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, **self._segments_of(token_type_ids)}
        backbone = self.backbone
        hidden = (backbone(**inputs) if weights is None else torch.func.functional_call(backbone, weights, (), inputs))[
            0
        ]
        return EncoderOutputs(hidden, hidden[:, 0], heads.pool(hidden, attention_mask, self.hparams.pooling))

    def _segments_of(self, token_type_ids: torch.Tensor | None) -> dict:
        """The segment ids as keyword arguments, for an encoder that reads them."""
        return {"token_type_ids": token_type_ids} if token_type_ids is not None and self._segments else {}

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of shape ``(batch, outputs)``: one per label, or one for a regression."""
        if self.classifier is not None and self.runtime is None:  # no hidden states kept: only the logits
            segments = self._segments_of(token_type_ids)
            return self.classifier(input_ids=input_ids, attention_mask=attention_mask, **segments).logits
        return self.logits_and_cls(input_ids, attention_mask, token_type_ids)[0]

    def logits_and_cls(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the vectors they come from ([CLS] or pooled), from PyTorch or from the ONNX graph."""
        if self.runtime is not None:
            return self.runtime(input_ids, attention_mask, token_type_ids)
        if self.classifier is not None:
            segments = self._segments_of(token_type_ids)
            out = self.classifier(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **segments
            )
            return out.logits, out.hidden_states[-1][:, 0]
        pooled = self.get_outputs(input_ids, attention_mask, token_type_ids).pooled
        return self.head(pooled), pooled

    def setup(self, stage: str) -> None:
        """What the task takes from the training split (read by now): class weights, a target's scale."""
        if stage == "fit":
            targets = self.trainer.datamodule.datasets["train"].labels
            trained_head = getattr(self, "_trained_head", False)
            self.task.fit_to(targets, self.hparams.class_weights, trained_head=trained_head)
            if balances_classes(self, self.trainer.datamodule):
                self.task.balance_decisions()
            self._log_every_epoch(len(targets))

    def on_fit_start(self) -> None:
        """Fit a new head on the frozen encoder's vectors before fine-tuning (``head_warm_start``)."""
        limit, trainer = self.hparams.head_warm_start, self.trainer
        if not limit or trainer.ckpt_path is not None or self._trained_head:
            return
        if self.head is None or "FSDP" in type(trainer.strategy).__name__:  # FSDP: the head's weights are sharded
            why = "an auto head" if self.head is None else "under FSDP, the head"
            self._say(f"imdb: --model.head_warm_start is for the mlp head: {why} starts as initialised")
            return
        with trainer.precision_plugin.forward_context():  # bf16 autocast where the run trains in it
            weights = warm_start.autocast_weights(self.backbone)  # cast once for the whole pass
            batches, length = trainer.datamodule.train_dataloader(), self.hparams.head_warm_start_length
            vectors, targets = warm_start.embed(self, batches, limit, length, weights)
        before, after = warm_start.fit_head(self.head, lambda x, y: self.task.loss(x, y, True), vectors, targets)
        warm_start.broadcast(self.head)
        self._say(
            f"imdb: head fitted on the frozen encoder's vectors of {len(targets)} texts, "
            f"loss {before:.3f} → {after:.3f} (--model.head_warm_start)"
        )

    def _say(self, line: str) -> None:
        if self.trainer.is_global_zero:
            print(line, file=sys.stderr)

    def _log_every_epoch(self, samples: int) -> None:
        """Log ``train_loss`` at least once an epoch: a small fit's epoch has fewer batches than
        ``log_every_n_steps`` (Lightning then logged none, and warned)."""
        datamodule, trainer = self.trainer.datamodule, self.trainer
        batches = math.ceil(samples / datamodule.hparams.batch_size) // trainer.world_size
        trainer.log_every_n_steps = max(1, min(trainer.log_every_n_steps, batches))

    def _loss_and_logits(self, batch: dict, training: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        return self.task.loss(logits, batch["labels"], training), logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss_and_logits(batch, training=True)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluate(self, batch: dict, stage: str) -> dict[str, torch.Tensor]:
        loss, logits = self._loss_and_logits(batch)
        scores = self.task.scores(logits)
        if self._trainer is not None and self.trainer.sanity_checking:
            # Lightning discards these; the few longest reviews may hold one class, which AUROC warns of.
            return {"scores": scores, "labels": batch["labels"]}
        metrics, mean_loss = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss")
        self.task.update(metrics, scores, batch["labels"])
        mean_loss.update(loss, weight=len(batch["labels"]))
        self.log(f"{stage}_loss", mean_loss, prog_bar=True)
        self.log_dict(metrics, prog_bar=True)
        return {"scores": scores, "labels": batch["labels"]}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")
        trainer = self.trainer
        if not trainer.sanity_checking and batch_idx + 1 == trainer.num_val_batches[0]:
            self._end_validation()

    def _end_validation(self) -> None:
        """Settings the task chooses on validation data while fitting (multi-label thresholds with
        ``tune``; with balanced classes, a shift of the logits, added to the output layer's bias),
        after the last batch and before Lightning computes the validation's metrics (which it does
        before ``on_validation_epoch_end``)."""
        shift = self.task.on_validation_end(self.val_metrics, tune=self.trainer.state.fn == "fit")
        if shift is not None and shift.any():  # into the output layer: checkpoints and exports decide alike
            with torch.no_grad():
                heads.output_layer(self.head_module).bias += shift.to(self.device)

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Also returns the batch's scores and labels, for callbacks such as the test report."""
        return self._evaluate(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        logits, cls = self.logits_and_cls(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        return {
            "index": batch["index"], "line": batch["line"], "scores": self.task.scores(logits),
            "copied": batch.get("copied"), "embedding": cls.float(),
        }  # fmt: skip

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip as configured (``gradient_clip_val: 1.0`` in the shared trainer config). Lightning clips
        by norm with ``torch.nn.utils``, which FSDP's sharded gradients do not allow (it refuses): under
        FSDP the wrapped root module clips its own, over all shards. Lightning also refuses to clip for a
        fused optimizer (``fused: true``) under mixed precision, for fear of fp16's loss scaling, which
        unscales gradients inside the fused step; bf16 has no scaling, and clips as usual."""
        from pytorch_lightning.plugins import MixedPrecision
        from pytorch_lightning.strategies import FSDPStrategy

        by_norm = gradient_clip_val and gradient_clip_algorithm in (None, "norm")
        if by_norm and isinstance(self.trainer.strategy, FSDPStrategy):
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        precision = self.trainer.precision_plugin
        if by_norm and isinstance(precision, MixedPrecision) and precision.scaler is None:
            weights = [p for group in optimizer.param_groups for p in group["params"]]
            if weights and weights[0].device.type == "cpu":  # reading the norm costs a GPU a sync, a CPU nothing
                norm = torch.nn.utils.get_total_norm([p.grad for p in weights if p.grad is not None])
                if norm > gradient_clip_val:  # below it, clip_grad_norm_ would multiply every gradient by 1
                    torch.nn.utils.clip_grads_with_norm_(weights, gradient_clip_val, norm)
                return
            torch.nn.utils.clip_grad_norm_(weights, gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def parameter_groups(self) -> list[dict]:
        """The weights in the optimizer's groups, as ``head_lr_scale`` and ``layer_lr_decay`` make them."""
        hp = self.hparams
        return parameter_groups(self.backbone, self.head_module, hp.head_lr_scale, hp.layer_lr_decay)

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameter_groups())
        apply_lr_scales(optimizer)
        if self.scheduler is None:
            return optimizer
        scheduler = build_scheduler(self.scheduler, optimizer, int(self.trainer.estimated_stepping_batches))
        self._planned_steps = getattr(scheduler["scheduler"], "total_steps", None)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def on_train_start(self) -> None:
        """A resumed run's schedule (restored from the checkpoint by now) must fit this run."""
        if self.trainer.ckpt_path is not None:
            for config in self.trainer.lr_scheduler_configs:
                check_resumed_length(config.scheduler, getattr(self, "_planned_steps", None), self.trainer.ckpt_path)


def plain(value):
    """``value`` with subclasses of int, float and str (jsonargparse's restricted types) made plain."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if type(value) in (bool, int, float, str):
        return value
    for base in (int, float, str):  # bool cannot be subclassed
        if isinstance(value, base):
            return base(value)
    return value
