"""One trial of ``imdb sweep``: an ordinary ``imdb fit`` in a process of its own, watched by the sweep.

The trial's fit writes each validation's score to ``reports.jsonl`` in its run directory
(:class:`ReportToSweep`); the sweep, which holds the Optuna trial, reports them to the study as
they come and, when the pruner says the trial is not worth finishing, writes ``stop`` there, which
ends the fit at its next batch. The fit needs neither Optuna nor the study's database, and the
sweep uses only Optuna's public API.

Ctrl-C or SIGTERM stops the fit (its process group: DDP ranks too) within seconds; Optuna marks
the trial failed, and the next run of the sweep runs it again.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from imdb_cli.errors import UserError

IMDB_FIT = [sys.executable, "-m", "imdb_cli", "fit"]
REPORTS, STOP = "reports.jsonl", "stop"
GRACE_S = 4.0
"""How long an interrupted trial's fit may take to stop after SIGTERM before it is killed."""


class ReportToSweep(pl.Callback):
    """In a trial's ``imdb fit``: append every validation's ``monitor`` to ``DIR/reports.jsonl``,
    and stop the fit once ``DIR/stop`` exists (the sweep's pruner wrote it).

    Args:
        directory: the trial's run directory.
        monitor: the logged metric to report.
    """

    def __init__(self, directory: str, monitor: str) -> None:
        self.directory, self.monitor = Path(directory), monitor

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics))
            raise UserError(f"the sweep's metric {self.monitor} is not logged: pick one of {logged}")
        with open(self.directory / REPORTS, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": trainer.global_step, "value": float(value)}) + "\n")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if (self.directory / STOP).exists():
            trainer.should_stop = True


def fit_command(base: Path, args: list[str], directory: Path, metric: str) -> list[str]:
    """``imdb fit`` of the sweep's configuration with the trial's settings, in its own run directory.

    Nothing specific to a logger is added: any logger that ``--trainer.default_root_dir`` places works."""
    report = {"class_path": f"{__name__}.ReportToSweep", "init_args": {"directory": str(directory), "monitor": metric}}
    return [
        *IMDB_FIT, "--config", str(base), *args, "--trainer.default_root_dir", str(directory),
        f"--trainer.callbacks+={json.dumps(report)}",
    ]  # fmt: skip


def run_trial(optuna, trial, command: list[str], directory: Path, direction: str) -> float:
    """Run ``command`` (a trial's fit writing into ``directory``), report its scores to ``trial`` as
    they come, prune it when the study says so; its best score."""
    log_path = directory / "fit.log"
    reports = Reports(directory / REPORTS)
    pruned_at = None
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                code = process.poll()
                for step, value in reports.new():
                    trial.report(value, step=step)
                    if pruned_at is None and trial.should_prune():
                        pruned_at = step
                        (directory / STOP).touch()
                if code is not None:
                    break
                time.sleep(0.25)
        finally:
            if process.poll() is None:
                stop(process)
    if code != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        raise UserError(f"trial {trial.number} failed: {lines[-1] if lines else code} (log: {log_path})")
    if not reports.values:
        raise UserError(f"trial {trial.number} validated never: the sweep's metric needs validation")
    if pruned_at is not None:
        trial.set_user_attr("pruned_at_step", pruned_at)
        print(f"imdb: trial {trial.number} pruned at step {pruned_at}", file=sys.stderr)
        raise optuna.TrialPruned()
    return max(reports.values) if direction == "maximize" else min(reports.values)


class Reports:
    """The scores a trial's fit has appended to its ``reports.jsonl``, read as they arrive."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.values, self.steps = path, 0, [], set()

    def new(self) -> list[tuple[int, float]]:
        """Complete lines written since the last call; a step reported twice counts once."""
        if not self.path.is_file():
            return []
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            text = f.read()
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        found = []
        for line in complete.splitlines():
            report = json.loads(line)
            if report["step"] not in self.steps and math.isfinite(report["value"]):
                self.steps.add(report["step"])
                self.values.append(report["value"])
                found.append((report["step"], report["value"]))
        return found


def stop(process: subprocess.Popen) -> None:
    """Stop a trial's fit and its children: SIGTERM (Lightning ends at the next batch), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
