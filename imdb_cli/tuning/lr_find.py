"""`imdb lr_find`: Lightning's learning-rate finder, and its result as JSON and a plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from imdb_cli.errors import UserError


def find_learning_rate(trainer, model, datamodule, min_lr: float, max_lr: float, num_training: int,
                       early_stop_threshold: float | None, out: Path) -> float | None:  # fmt: skip
    """Run ``Tuner.lr_find`` and write ``lr_find.json`` and ``lr_find.png`` into ``out``; the suggestion."""
    from pytorch_lightning.tuner import Tuner

    if not min_lr < max_lr:
        raise UserError(f"--min_lr {min_lr} must be below --max_lr {max_lr}")
    epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = max(epochs or 1, num_training)  # a small training set runs several epochs
    try:
        finder = Tuner(trainer).lr_find(
            model, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr, num_training=num_training,
            early_stop_threshold=early_stop_threshold, update_attr=False,
        )  # fmt: skip
    finally:
        trainer.fit_loop.max_epochs = epochs
    if finder is None or not finder.results.get("lr"):
        raise UserError("the learning-rate finder tried no rate: the training data gave it no batch")
    suggestion = finder.suggestion()
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "suggestion": suggestion,
        "min_lr": min_lr,
        "max_lr": max_lr,
        "steps": len(finder.results["lr"]),
        "lr": finder.results["lr"],
        "loss": finder.results["loss"],
    }
    (out / "lr_find.json").write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    figure = finder.plot(suggest=suggestion is not None)
    axes = figure.axes[0]
    axes.set_title(f"imdb lr_find: suggested {suggestion:.2e}" if suggestion else "imdb lr_find: no suggestion")
    figure.savefig(out / "lr_find.png", dpi=110, bbox_inches="tight")
    if suggestion is None:
        print(f"imdb: no suggestion: the loss never fell steadily; see {out / 'lr_find.png'}", file=sys.stderr)
    else:
        print(f"suggested learning rate: {suggestion:.3g} ({out / 'lr_find.json'}, {out / 'lr_find.png'})")
    return suggestion
