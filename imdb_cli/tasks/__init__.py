"""Task kinds: what a target is, and everything that follows from it (loss, metrics, records, report).

``classification`` is one label per text (:class:`SingleLabel`), ``multi_label`` any number of labels
per text (:class:`MultiLabel`), ``regression`` a number per text (:class:`Regression`). A new kind is
one more module here and one more entry in :data:`TASKS`.
"""

from __future__ import annotations

from typing import Literal

from imdb_cli.tasks.base import Label, Task, TaskReport
from imdb_cli.tasks.multi_label import MultiLabel
from imdb_cli.tasks.regression import Regression
from imdb_cli.tasks.single_label import SingleLabel

TaskName = Literal["classification", "multi_label", "regression"]

TASKS: dict[str, type[Task]] = {kind.name: kind for kind in (SingleLabel, MultiLabel, Regression)}

RECORD_FIELDS = tuple(dict.fromkeys(field for kind in TASKS.values() for field in kind.fields))
"""Every field a prediction record may have: a column copied from the input must not be one."""


def build_task(name: str, label_names: list[str], threshold: float | list[float] | str = 0.5) -> Task:
    """The task ``name`` for a model with outputs ``label_names``."""
    if name == MultiLabel.name:
        return MultiLabel(label_names, threshold)
    return TASKS[name](label_names)


__all__ = [
    "RECORD_FIELDS",
    "TASKS",
    "Label",
    "MultiLabel",
    "Regression",
    "SingleLabel",
    "Task",
    "TaskName",
    "TaskReport",
    "build_task",
]
