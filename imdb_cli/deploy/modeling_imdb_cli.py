"""imdb-cli's MLP head on any transformers encoder, as a model transformers loads with ``trust_remote_code``.

``imdb export`` copies this file into an export whose encoder has no sequence-classification head of
that shape in transformers (every encoder but DistilBERT, or a ``head_hidden`` other than the
encoder's width), and names it in ``config.json``'s ``auto_map``. Then

    AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)
    pipeline("text-classification", model=DIR, trust_remote_code=True)

load the whole classifier. It needs transformers and torch only: it imports nothing from imdb-cli.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput


class MLPHeadForSequenceClassification(PreTrainedModel):
    """The encoder (``AutoModel`` of the config), its last layer's first-token ([CLS]) vector, or the
    mean of its token vectors, through ``pre_classifier`` → ReLU → dropout → ``classifier``:
    DistilBERT's head, on any encoder.

    The config's ``head_hidden`` is the hidden layer's width (the encoder's by default; 0: none, the
    vector goes through dropout to ``classifier`` alone),
    ``head_dropout`` the dropout probability, ``head_pooling`` ``cls`` (the default) or ``mean``;
    ``problem_type`` chooses the loss when labels are given.
    """

    # Attention is the encoder's: its own class refuses an implementation it lacks.
    _supports_sdpa = _supports_flash_attn = _supports_flex_attn = _supports_attention_backend = True

    def __init__(self, config) -> None:
        super().__init__(config)
        encoder = AutoModel.from_config(config)
        self.base_model_prefix = type(encoder).base_model_prefix
        setattr(self, self.base_model_prefix, encoder)
        hidden = getattr(config, "head_hidden", None)
        hidden = config.hidden_size if hidden is None else hidden
        self.pre_classifier = nn.Linear(config.hidden_size, hidden) if hidden else None
        self.dropout = nn.Dropout(getattr(config, "head_dropout", 0.0))
        self.classifier = nn.Linear(hidden or config.hidden_size, config.num_labels)
        self._segments = "token_type_ids" in inspect.signature(encoder.forward).parameters
        self.post_init()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None and self._segments else {}
        outputs = self.base_model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions, **extra,
        )  # fmt: skip
        vector = self.pooled(outputs[0], attention_mask)
        if self.pre_classifier is not None:
            vector = torch.relu(self.pre_classifier(vector))
        logits = self.classifier(self.dropout(vector))
        return SequenceClassifierOutput(
            loss=None if labels is None else self._loss(logits, labels),
            logits=logits,
            hidden_states=getattr(outputs, "hidden_states", None),
            attentions=getattr(outputs, "attentions", None),
        )

    def pooled(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The vector the head reads: [CLS], or (``head_pooling: mean``) the mean over the unmasked tokens."""
        if getattr(self.config, "head_pooling", "cls") != "mean":
            return hidden[:, 0]
        if attention_mask is None:
            return hidden.mean(1)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss transformers' own sequence classifiers compute for the config's ``problem_type``."""
        if self.config.problem_type == "regression":
            return nn.functional.mse_loss(logits.squeeze(-1), labels.float())
        if self.config.problem_type == "multi_label_classification":
            return nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
        return nn.functional.cross_entropy(logits, labels)
