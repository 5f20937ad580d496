"""The bodies `imdb serve` takes and answers, as pydantic models: FastAPI validates requests with them
and describes them in ``/openapi.json`` (and ``/docs``).

Two protocols: ``POST /predict`` takes ``{"texts": [...]}`` and answers the records ``imdb predict``
writes; ``POST /`` is Hugging Face's inference protocol for text classification, what
``huggingface_hub.InferenceClient(model=URL).text_classification`` and Inference Endpoints' clients send.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, PositiveInt


def checked(text: str) -> str:
    """A text the tokenizer can take: not blank, and valid Unicode (JSON can carry a lone surrogate
    escape, ``"\\ud800"``, which no tokenizer takes: refused here, before the text joins a batch)."""
    if not text.strip():
        raise ValueError("empty or only spaces")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"not valid Unicode: {err.reason} at character {err.start}") from None
    return text


Text = Annotated[str, AfterValidator(checked)]
Pair = tuple[Text, Text]
TEXTS = "the texts to classify, each given a record in this order"


class TextsRequest(BaseModel):
    """``POST /predict``: the texts to classify."""

    texts: list[Text] = Field(min_length=1, description=TEXTS, examples=[["A moving film.", "Dull and far too long."]])


class PairsRequest(BaseModel):
    """``POST /predict`` of a pair model: the pairs of texts to classify, ``[first, second]`` each."""

    texts: list[Pair] = Field(min_length=1, description=TEXTS, examples=[[["A man plays a guitar.", "A man plays."]]])


class ClassRecord(BaseModel):
    """One text's prediction, single-label: as ``imdb predict`` writes it."""

    line: int = Field(description="the text's 1-based position in the request")
    label: str = Field(description="the most probable label")
    score: float = Field(description="its probability")
    probs: dict[str, float] = Field(description="every label's probability")


class LabelsRecord(BaseModel):
    """One text's prediction, multi-label: as ``imdb predict`` writes it."""

    line: int = Field(description="the text's 1-based position in the request")
    labels: list[str] = Field(description="the labels whose probability reaches its threshold")
    probs: dict[str, float] = Field(description="every label's probability")


class ValueRecord(BaseModel):
    """One text's prediction, regression: as ``imdb predict`` writes it."""

    line: int = Field(description="the text's 1-based position in the request")
    value: float = Field(description="the predicted value, in the training targets' units")


RECORDS: dict[str, type[BaseModel]] = {
    "classification": ClassRecord,
    "multi_label": LabelsRecord,
    "regression": ValueRecord,
}
"""The record of each task kind (:data:`imdb_cli.tasks.TASKS`)."""

Record = TypeVar("Record", ClassRecord, LabelsRecord, ValueRecord)


class Predictions(BaseModel, Generic[Record]):
    """``POST /predict``'s answer: one record per text, in the request's order."""

    predictions: list[Record]


def one_or_many(value):
    """The Inference API takes one input or a list of them; both are answered with a list."""
    return value if isinstance(value, list) else [value]


class Parameters(BaseModel):
    """The Inference API's parameters for text classification."""

    top_k: PositiveInt | None = Field(None, description="only the k most probable labels (default: every label)")
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None,
        description="what turns the model's outputs into scores: softmax (single-label's default), "
        "sigmoid (multi-label's), none (the raw outputs; a regression's default, its value)",
    )


Inputs = Annotated[
    list[Text], Field(min_length=1), BeforeValidator(one_or_many, json_schema_input_type=Text | list[Text])
]


class InferenceRequest(BaseModel):
    """``POST /``: Hugging Face's inference protocol for text classification."""

    inputs: Inputs = Field(description="a text, or a list of texts", examples=["A moving film."])
    parameters: Parameters | None = None


class TextPair(BaseModel):
    """A pair of texts, as ``transformers``' text-classification pipeline takes it."""

    text: Text
    text_pair: Text


PairInputs = Annotated[
    list[TextPair], Field(min_length=1), BeforeValidator(one_or_many, json_schema_input_type=TextPair | list[TextPair])
]


class PairsInferenceRequest(BaseModel):
    """``POST /`` of a pair model: ``{"text": ..., "text_pair": ...}``, or a list of them."""

    inputs: PairInputs = Field(
        description="a pair, or a list of pairs",
        examples=[{"text": "A man plays a guitar.", "text_pair": "A man plays."}],
    )
    parameters: Parameters | None = None


class LabelScore(BaseModel):
    """One label and its score, as the Inference API answers for text classification."""

    label: str
    score: float


InferenceResponse = list[list[LabelScore]]
"""``POST /``'s answer: for each input (one for a single text), its labels, highest score first."""


class ErrorBody(BaseModel):
    """Every error: one line saying what is wrong."""

    error: str = Field(examples=["texts[1]: empty or only spaces"])
