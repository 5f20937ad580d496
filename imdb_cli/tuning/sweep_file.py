"""The sweep file of ``imdb sweep``: what to search over, by which metric, with which sampler.

A YAML mapping; every key but ``parameters`` is optional::

    metric: val_acc          # default: the task's own (val_acc, val_f1_micro, val_mse)
    direction: maximize      # default: minimize for a loss or error (loss, mse, mae), else maximize
    n_trials: 6              # default: 10; a grid's size for the grid sampler
    sampler: tpe             # tpe (default), random, or grid (every combination of lists)
    pruner: median           # median (default) or none
    startup_trials: 5        # trials the median pruner lets finish before it prunes any
    seed: 42                 # the sampler's seed
    fixed:                   # settings every trial takes, unsearched (optional)
      data.num_folds: 5
    parameters:              # dotted `imdb fit` keys
      model.scheduler.init_args.max_lr: {low: 1.0e-5, high: 3.0e-4, log: true}   # a float
      data.batch_size: {low: 8, high: 32, step: 8}                               # ints: int bounds
      model.dropout: [0.1, 0.2]                                                   # choices

Whether a key exists and takes the values given is checked against ``imdb fit`` itself, before any
training (:func:`imdb_cli.sweep.check_settings`); this module checks the file's own shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from imdb_cli.errors import UserError

Sampler = Literal["tpe", "random", "grid"]
Pruner = Literal["median", "none"]
FIELDS = {"metric", "direction", "n_trials", "sampler", "pruner", "startup_trials", "seed", "fixed", "parameters"}
RANGE_FIELDS = {"low", "high", "log", "step"}


@dataclass
class Parameter:
    """One setting to search: a range of floats or ints, or a list of choices."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list | None = None

    @property
    def is_int(self) -> bool:
        return self.choices is None and all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    def suggest(self, trial) -> Any:
        """The value of this setting in an Optuna ``trial``."""
        if self.choices is not None:
            return trial.suggest_categorical(self.key, self.choices)
        if self.is_int:
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list:
        """Every value, for the grid sampler: the choices, or the range in its steps."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise UserError(f"sweep parameter {self.key}: the grid sampler needs a list, or a range with a step")
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        values = [self.low + i * self.step for i in range(count)]
        return values if self.is_int else [round(v, 12) for v in values]

    def extremes(self) -> list:
        """The values that must fit the setting's type: both bounds, or every choice."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SweepFile:
    """A parsed sweep file (the module docstring says what each field means)."""

    parameters: list[Parameter]
    metric: str | None = None
    direction: Literal["maximize", "minimize"] | None = None
    n_trials: int | None = None
    sampler: Sampler = "tpe"
    pruner: Pruner = "median"
    startup_trials: int = 5
    seed: int = 42
    fixed: dict[str, Any] = field(default_factory=dict)
    path: str = field(default="", repr=False)

    def grid(self) -> dict[str, list]:
        return {p.key: p.grid() for p in self.parameters}

    @property
    def trials(self) -> int:
        """How many trials the sweep runs: a grid's every combination, else ``n_trials`` (10)."""
        if self.sampler == "grid":
            return math.prod(len(values) for values in self.grid().values())
        return self.n_trials or 10


def read_sweep_file(path: str) -> SweepFile:
    """Read and check the shape of a sweep file; a one-line error names the first problem."""
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"sweep file {path} does not exist")
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"sweep file {path} is not YAML: {str(err).splitlines()[0]}") from None
    where = f"sweep file {path}"
    if not isinstance(spec, dict):
        raise UserError(f"{where} is not a mapping of {', '.join(sorted(FIELDS))}")
    if unknown := sorted(set(spec) - FIELDS):
        raise UserError(f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(sorted(FIELDS))}")
    parameters = spec.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise UserError(f"{where} names no parameters: give `parameters:` a mapping of imdb fit keys to ranges")
    sweep = SweepFile([_parameter(key, value, where) for key, value in parameters.items()], path=str(path))
    for name, kind, allowed in (
        ("metric", str, None), ("direction", str, ("maximize", "minimize")), ("n_trials", int, None),
        ("sampler", str, ("tpe", "random", "grid")), ("pruner", str, ("median", "none")),
        ("startup_trials", int, None), ("seed", int, None),
    ):  # fmt: skip
        if name not in spec:
            continue
        value = spec[name]
        if not isinstance(value, kind) or isinstance(value, bool) or (allowed and value not in allowed):
            expected = f"one of {', '.join(allowed)}" if allowed else kind.__name__
            raise UserError(f"{where}: {name} is {value!r}, expected {expected}")
        setattr(sweep, name, value)
    fixed = spec.get("fixed", {})
    if not isinstance(fixed, dict) or any(not isinstance(key, str) or "." not in key for key in fixed):
        raise UserError(f"{where}: fixed must map dotted imdb fit keys to values, such as data.num_folds: 5")
    if overlap := sorted(set(fixed) & {p.key for p in sweep.parameters}):
        raise UserError(f"{where}: {overlap[0]} is both fixed and searched")
    sweep.fixed = fixed
    if sweep.n_trials is not None and sweep.n_trials < 1:
        raise UserError(f"{where}: n_trials is {sweep.n_trials}, expected 1 or more")
    if sweep.sampler == "grid":
        sweep.grid()  # every parameter has a grid
    return sweep


def _parameter(key, value, where: str) -> Parameter:
    if not isinstance(key, str) or key.count(".") < 1:
        raise UserError(f"{where}: parameter {key!r} is not a dotted imdb fit key such as model.dropout")
    if isinstance(value, list):
        if not value:
            raise UserError(f"{where}: parameter {key} has an empty list of choices")
        return Parameter(key, choices=value)
    if not isinstance(value, dict) or not {"low", "high"} <= set(value) or set(value) - RANGE_FIELDS:
        raise UserError(f"{where}: parameter {key} is neither a list of choices nor a range {{low, high, log, step}}")
    low, high, step, log = value["low"], value["high"], value.get("step"), value.get("log", False)
    numbers = [v for v in (low, high, step) if v is not None]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers) or not isinstance(log, bool):
        raise UserError(f"{where}: parameter {key}: low, high and step must be numbers and log true or false")
    if not low < high:
        raise UserError(f"{where}: parameter {key} has an empty range: low {low} is not below high {high}")
    if log and (low <= 0 or step is not None):
        raise UserError(f"{where}: parameter {key}: a log range needs low above 0 and no step")
    if step is not None and step <= 0:
        raise UserError(f"{where}: parameter {key}: step {step} must be above 0")
    return Parameter(key, low=low, high=high, log=log, step=step)
