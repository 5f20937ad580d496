"""`imdb sweep`: a hyperparameter search with Optuna over any setting of ``imdb fit``.

Every trial is an ordinary ``imdb fit`` in a process of its own, with its own run directory
(``RUN/sweep/trial_NNN/``, its logger's files and checkpoints as any fit) and the sweep's
settings on top of the configuration the sweep was given (``RUN/sweep/base.yaml``). The sweep
reports each of the trial's validation scores to the study, where the pruner may stop it
(:mod:`imdb_cli.tuning.trial`); Ctrl-C stops the trial, which the next run runs again.
The study lives in a database (``sqlite:///RUN/sweep.db`` by default): a sweep started again goes
on where it stopped, an interrupted trial is run again, and several processes (or
machines, with a shared database such as PostgreSQL) pointed at one study run its trials in
parallel. At the end: ``trials.csv``, ``best.yaml`` (the winner, for ``imdb fit --config``),
the mean and standard deviation of the metric over the trials (a k-fold cross-validation's
result) and plots of the search.

Needs Optuna (the ``sweep`` extra).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from imdb_cli import staging
from imdb_cli.errors import UserError
from imdb_cli.tuning.sweep_file import SweepFile, read_sweep_file
from imdb_cli.tuning.trial import fit_command, run_trial

EXTRA = "pip install optuna (imdb-cli's sweep extra)"
LOWER_IS_BETTER = ("loss", "mse", "mae")


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise UserError(f"imdb sweep needs Optuna: {EXTRA}") from None
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial is imdb's one line, not Optuna's traceback
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def run_sweep(model, sweep: str, fit_config: str, run_dir: Path, storage: str | None, study_name: str | None,
              n_trials: int | None, fit_refuses: Callable[[list[str]], str | None]) -> None:  # fmt: skip
    """Run (or go on with) the sweep of file ``sweep`` over the ``imdb fit`` configuration ``fit_config``;
    ``fit_refuses(args)`` is the one-line reason ``imdb fit`` refuses ``args``, or ``None``."""
    optuna = require_optuna()
    spec = read_sweep_file(sweep)
    metric = spec.metric or model.task.monitor[0]
    direction = spec.direction or ("minimize" if metric.endswith(LOWER_IS_BETTER) else "maximize")
    total = spec.trials if spec.sampler == "grid" else n_trials or spec.trials
    out = run_dir / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    base = out / "base.yaml"
    fd, tmp = staging.staged_file(base)  # renamed into place: another process on the study may be reading it
    with os.fdopen(fd, "w") as f:
        f.write(fit_config)
    staging.replace(tmp, base)
    check_settings(spec, base, fit_refuses)
    storage = storage or f"sqlite:///{(run_dir / 'sweep.db').resolve()}"
    name = study_name or Path(sweep).stem
    study = optuna.create_study(
        study_name=name, storage=_storage(optuna, storage), sampler=_sampler(optuna, spec, spec.seed),
        pruner=_pruner(optuna, spec.pruner, spec.startup_trials),
        direction=direction, load_if_exists=True,
    )  # fmt: skip
    if study.direction.name.lower() != direction:
        kind = study.direction.name.lower()
        raise UserError(f"study {name} in {storage} is a {kind} study, not {direction}: pass another --study_name")
    if spec.sampler == "grid":
        _queue_grid(study, spec)
    else:
        _retry_interrupted(study)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=states))
    print(f"imdb: sweep {name}: {done} of {total} trials done; {direction} {metric}; in {storage}", file=sys.stderr)
    if done < total:
        stop = optuna.study.MaxTrialsCallback(total, states=states)
        with interruptible():
            study.optimize(
                lambda trial: objective(optuna, trial, spec, base, out, metric, direction),
                callbacks=[stop], gc_after_trial=False,
            )  # fmt: skip
    write_results(optuna, study, spec, base, out, metric)


def check_settings(spec: SweepFile, base: Path, fit_refuses: Callable[[list[str]], str | None]) -> None:
    """Each parameter's key and values, as ``imdb fit`` takes them, before any training: one
    check of ``imdb fit``'s arguments per value a setting must take (both bounds, every choice)."""
    rounds = max(len(p.extremes()) for p in spec.parameters)
    for i in range(rounds):
        values = spec.fixed | {p.key: p.extremes()[min(i, len(p.extremes()) - 1)] for p in spec.parameters}
        reason = fit_refuses(["--config", str(base), *settings_args(values)])
        if reason is not None:
            raise UserError(f"sweep file {spec.path} does not fit imdb fit: {reason}")


def settings_args(values: dict) -> list[str]:
    """``--key=value`` for each setting, values written as YAML reads them back."""
    return [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in values.items()]


def objective(optuna, trial, spec: SweepFile, base: Path, out: Path, metric: str, direction: str) -> float:
    """One trial: settings from the sampler, seeded by the trial's number (a resumed study, or
    another process on it, never draws the same settings again), then an ``imdb fit`` of them."""
    trial.study.sampler = _sampler(optuna, spec, spec.seed + trial.number)
    values = {p.key: p.suggest(trial) for p in spec.parameters}
    shown = ", ".join(f"{k}={v}" for k, v in values.items())
    directory = out / f"trial_{trial.number:03d}"
    directory.mkdir(parents=True, exist_ok=True)
    trial.set_user_attr("run_dir", str(directory))
    command = fit_command(base, settings_args(spec.fixed | values), directory, metric)
    print(f"imdb: trial {trial.number}: {shown}", file=sys.stderr, flush=True)
    best = run_trial(optuna, trial, command, directory, direction)
    print(f"imdb: trial {trial.number}: {metric}={best:.4f}", file=sys.stderr, flush=True)
    return best


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a sweep; the exit status is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum


@contextlib.contextmanager
def interruptible():
    """SIGINT and SIGTERM raise :class:`Interrupted` meanwhile, even in a process started with
    SIGINT ignored (a background job of a script): the running trial stops and is marked failed."""

    def interrupt(signum, frame) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _storage(optuna, url: str):
    """An RDB storage whose running trials send heartbeats: a trial whose sweep was killed outright
    is marked failed after two minutes, and run again."""
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        return url
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    return optuna.storages.RDBStorage(
        url, heartbeat_interval=30, grace_period=120, heartbeat_stale_trial_callback=retry
    )


def _pruner(optuna, pruner: str, startup_trials: int):
    """The sweep file's pruner; the study's storage does not keep it, so every process builds it."""
    if pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials)


def _sampler(optuna, spec: SweepFile, seed: int):
    if spec.sampler in ("grid", "random"):  # a grid's points are queued (_queue_grid): never sampled
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _queue_grid(study, spec: SweepFile) -> None:
    """Queue every point of the grid that no trial has finished or is about to run.

    Optuna's GridSampler counts a failed trial's point as visited, so a fold of a k-fold
    cross-validation whose sweep was interrupted would never run again; queued points are.
    """
    import itertools

    grid = spec.grid()
    trials = study.get_trials(deepcopy=False)
    taken = [t.params for t in trials if t.state.name in ("COMPLETE", "PRUNED", "RUNNING")]
    taken += [t.system_attrs.get("fixed_params") for t in trials if t.state.name == "WAITING"]
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        if point not in taken:
            study.enqueue_trial(point)


def _retry_interrupted(study) -> None:
    """Queue again the settings of trials that an interrupted sweep left failed, once each."""
    trials = study.get_trials(deepcopy=False)
    finished = [t.params for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        if trial.state.name == "FAIL" and trial.params not in finished and trial.number not in retried:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            finished.append(trial.params)


def write_results(optuna, study, spec: SweepFile, base: Path, out: Path, metric: str) -> None:
    """``trials.csv``, the printed table, the summary, ``best.yaml`` and the plots."""
    import csv

    trials = study.get_trials(deepcopy=False)
    keys = [p.key for p in spec.parameters]
    rows = [
        [t.number, t.state.name.lower(), "" if t.value is None else round(t.value, 6),
         *[t.params.get(k, "") for k in keys], _seconds(t), t.user_attrs.get("run_dir", "")]
        for t in trials
    ]  # fmt: skip
    header = ["trial", "state", metric, *keys, "seconds", "run_dir"]
    with open(out / "trials.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)))
    values = [t.value for t in trials if t.state.name == "COMPLETE"]
    if not values:
        print("imdb: no trial completed yet", file=sys.stderr)
        return
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    print(f"{metric}: mean {statistics.mean(values):.4f} ± {spread:.4f} (standard deviation) over {len(values)} trials")
    best = study.best_trial
    write_best_config(base, spec.fixed | best.params, out / "best.yaml")
    print(f"best: trial {best.number}, {metric}={best.value:.4f}; imdb fit --config {out / 'best.yaml'}")
    plot_study(optuna, study, out)


def write_best_config(base: Path, params: dict, path: Path) -> None:
    """The sweep's configuration with the best trial's settings: ``imdb fit --config`` takes it as is."""
    import yaml

    config = yaml.safe_load(base.read_text())
    for key, value in params.items():
        *parents, last = key.split(".")
        node = config
        for part in parents:
            if isinstance(node.get(part), str):  # a class given by name: keep it, add its arguments
                node[part] = {"class_path": node[part]}
            elif not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    command = f"# imdb fit --config {path}\n# the best trial of imdb sweep: {json.dumps(params)}\n"
    path.write_text(command + yaml.safe_dump(config, sort_keys=False))


def plot_study(optuna, study, out: Path) -> None:
    """Optimization history, parameter importances and slices, as PNG (importances need two completed trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    figures = {"optimization_history": plots.plot_optimization_history, "slice": plots.plot_slice}
    if len(completed) >= 2 and len({json.dumps(t.params, sort_keys=True) for t in completed}) >= 2:
        figures["param_importances"] = plots.plot_param_importances
    for name, plot in figures.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature notes, equal importances of few trials
            axes = plot(study)
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
        figure.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
        plt.close(figure)


def _seconds(trial) -> str:
    if trial.datetime_start and trial.datetime_complete:
        return f"{(trial.datetime_complete - trial.datetime_start).total_seconds():.1f}"
    return ""
