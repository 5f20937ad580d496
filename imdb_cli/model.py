"""The classifier: a pretrained encoder's [CLS] vector through a small MLP head."""

from __future__ import annotations

from typing import Literal, NamedTuple

import pytorch_lightning as pl
import torch
from jsonargparse.typing import ClosedUnitInterval, PositiveFloat, PositiveInt
from pytorch_lightning.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassAUROC, MulticlassF1Score

from imdb_cli import encoders
from imdb_cli.errors import UserError
from imdb_cli.export import load_head
from imdb_cli.param_groups import LayerDecay, apply_lr_scales, check_resumed_groups, parameter_groups
from imdb_cli.schedules import build_scheduler, check_resumed_length


class EncoderOutputs(NamedTuple):
    """What ``get_outputs`` returns: every token's last-layer embedding and the [CLS] vector."""

    hidden_states: torch.Tensor
    """``(batch, tokens, width)`` last hidden layer; padded positions are meaningless."""
    cls: torch.Tensor
    """``(batch, width)`` the first token's vector, which the head classifies."""


class SentimentClassifier(pl.LightningModule):
    """Fine-tune a transformer encoder for text classification.

    The first ([CLS]) token of the encoder's last hidden layer goes through
    Linear → ReLU → Dropout → Linear(number of labels), as in the reference IMDB recipe.
    The encoder is built in ``configure_model`` (not ``__init__``), with pretrained weights only
    when no checkpoint is about to replace them.

    Args:
        encoder: Hugging Face Hub id, local directory, or ``pkg://PACKAGE/DIR`` of a packaged model.
            A directory written by ``imdb export`` brings its trained head along.
        label_names: class names in label-id order; linked from the data, not set on its own.
        head_hidden: width of the head's hidden layer; by default the encoder's width.
        dropout: dropout probability between the head's two layers.
        attention_dropout: dropout on the encoder's attention probabilities while fine-tuning;
            ``null`` keeps the pretrained config's (0.1 for BERT and DistilBERT). At 0, PyTorch
            runs attention as one fused kernel instead of materialising every token pair's
            probability and dropout mask: on a 2-core CPU a MiniLM training step at 512 tokens took
            2.3x less time, at the same accuracy (README, Results).
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
            unweighted; watch ``val_f1`` (macro) rather than ``val_acc`` on such data.
    """

    def __init__(
        self,
        encoder: str = "distilbert-base-uncased",
        label_names: list[str] | None = None,
        head_hidden: PositiveInt | None = None,
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.label_names = list(label_names or ["negative", "positive"])
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.encoder: nn.Module | None = None
        self.head: nn.Module | None = None
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(len(self.label_names), average="micro"),
                "f1": MulticlassF1Score(len(self.label_names), average="macro"),
                "auroc": MulticlassAUROC(len(self.label_names)),
            }
        )
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
        if self.encoder is None:
            restoring = self._trainer is not None and self.trainer.ckpt_path is not None
            self.build(pretrained=not restoring)

    def build(self, pretrained: bool = True) -> None:
        """The encoder and head: with the encoder's weights (and an exported head's) when
        ``pretrained``, or only the architecture when a checkpoint's weights will replace them."""
        hp = self.hparams
        self.encoder = encoders.load_encoder(hp.encoder, pretrained, hp.attention_dropout).train()
        self._check_max_length()
        # The head reads the [CLS] hidden state, never the pooler: frozen, DDP expects no gradient for it.
        pooler = getattr(self.encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)
        if hp.compile:
            self.encoder.compile(dynamic=True)  # in place: parameter names, and checkpoints, stay the same
        width = self.encoder.config.hidden_size
        hidden = hp.head_hidden or width
        self.head = nn.Sequential(
            nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(hp.dropout), nn.Linear(hidden, self.num_labels)
        )
        exported = load_head(encoders.resolve(hp.encoder)) if pretrained else None
        if exported is not None:
            try:
                self.head.load_state_dict(exported)
            except RuntimeError:
                raise UserError(
                    f"the head exported in {hp.encoder} does not fit {self.num_labels} labels "
                    f"({', '.join(self.label_names)}) and width {hidden}: use --model_dir {hp.encoder}"
                ) from None

    def _check_max_length(self) -> None:
        """Texts longer than the encoder's position table would fail deep inside it: say so first."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        max_length = getattr(datamodule, "hparams", {}).get("max_length")
        positions = getattr(self.encoder.config, "max_position_embeddings", None)
        if max_length and positions and max_length > positions:
            limit = f"encoder {self.hparams.encoder} can read ({positions} tokens)"
            raise UserError(f"--data.max_length {max_length} is more than {limit}")

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Lightning calls this before it loads the weights: a checkpoint of another encoder or head
        (``--model.encoder`` given beside ``--ckpt_path``) is one line, not a size-mismatch traceback."""
        if "FSDP" not in type(self.trainer.strategy).__name__:  # FSDP's own view of the weights is sharded
            self.check_fits(checkpoint["state_dict"], checkpoint.get("hyper_parameters", {}).get("encoder"))
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

    def get_outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutputs:
        """The encoder's last hidden layer and [CLS] vector, for embeddings and downstream use."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return EncoderOutputs(hidden, hidden[:, 0])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(batch, num_labels)``."""
        return self.head(self.get_outputs(input_ids, attention_mask).cls)

    def setup(self, stage: str) -> None:
        """The class weights of the training loss, from the training split (read by now)."""
        if stage == "fit" and self.hparams.class_weights is not None:
            labels = self.trainer.datamodule.datasets["train"].labels
            weights = class_weights(self.hparams.class_weights, labels, self.label_names)
            self.register_buffer("loss_weights", weights.to(self.device), persistent=False)

    def _loss_and_logits(self, batch: dict, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        weights = None if weights is None else weights.float()  # FSDP casts buffers to bf16
        return nn.functional.cross_entropy(logits.float(), batch["labels"], weight=weights), logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss_and_logits(batch, getattr(self, "loss_weights", None))
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluate(self, batch: dict, stage: str) -> dict[str, torch.Tensor]:
        loss, logits = self._loss_and_logits(batch)
        probs = logits.float().softmax(-1)
        if self._trainer is not None and self.trainer.sanity_checking:
            # Lightning discards these; the few longest reviews may hold one class, which AUROC warns of.
            return {"probs": probs, "labels": batch["labels"]}
        metrics, mean_loss = getattr(self, f"{stage}_metrics"), getattr(self, f"{stage}_loss")
        metrics.update(probs, batch["labels"])
        mean_loss.update(loss, weight=len(batch["labels"]))
        self.log(f"{stage}_loss", mean_loss, prog_bar=True)
        self.log_dict(metrics, prog_bar=True)
        return {"probs": probs, "labels": batch["labels"]}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        """Also returns the batch's probabilities and labels, for callbacks such as the test report."""
        return self._evaluate(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> dict[str, torch.Tensor]:
        cls = self.get_outputs(batch["input_ids"], batch["attention_mask"]).cls
        probs = self.head(cls).float().softmax(-1)
        return {
            "index": batch["index"], "line": batch["line"], "probs": probs, "copied": batch.get("copied"),
            "embedding": cls.float(),
        }  # fmt: skip

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip as configured (``gradient_clip_val: 1.0`` in the shared trainer config). Lightning clips
        by norm with ``torch.nn.utils``, which FSDP's sharded gradients do not allow (it refuses): under
        FSDP the wrapped root module clips its own, over all shards."""
        from pytorch_lightning.strategies import FSDPStrategy

        fsdp = isinstance(self.trainer.strategy, FSDPStrategy)
        if fsdp and gradient_clip_val and gradient_clip_algorithm in (None, "norm"):
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def parameter_groups(self) -> list[dict]:
        """The weights in the optimizer's groups, as ``head_lr_scale`` and ``layer_lr_decay`` make them."""
        return parameter_groups(self.encoder, self.head, self.hparams.head_lr_scale, self.hparams.layer_lr_decay)

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


def class_weights(given: str | list[float], labels: list[int], label_names: list[str]) -> torch.Tensor:
    """The loss weight of each class: ``balanced`` gives ``n / (classes * count)``, scikit-learn's
    ``compute_class_weight``; a list is taken as it is, once its length is checked."""
    if given != "balanced":
        if len(given) != len(label_names):
            raise UserError(
                f"--model.class_weights gives {len(given)} weights for {len(label_names)} labels "
                f"({', '.join(label_names)}): give one per label, in that order, or balanced"
            )
        return torch.tensor(given, dtype=torch.float)
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=len(label_names)).float()
    if (counts == 0).any():
        missing = label_names[int((counts == 0).nonzero()[0])]
        raise UserError(f"--model.class_weights balanced: label {missing!r} has no training texts")
    return counts.sum() / (len(label_names) * counts)


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
