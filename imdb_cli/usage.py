"""Mistakes in the command line or a config file as the one line ``imdb`` prints: the option, what
it accepts, and where to look. jsonargparse's own message is the whole usage (about 80 lines)
followed by every type it tried."""

from __future__ import annotations

import collections.abc
import difflib
import re
import types
import typing

NoneType = type(None)
_OPERATORS = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "eq": "=", "ne": "≠"}


def one_line(message: str, parser, subcommand: str | None, argv: list[str]) -> str:
    """A parser's error ``message`` as one line, for the subcommand parser ``parser``."""
    where = f"imdb {subcommand} --help" if subcommand else "imdb --help"
    if match := re.match(r'Parser key "([^"]+)":\s*(.*)', message, re.S):
        key, detail = match[1], match[2]
        action = _action(parser, key)
        if key == "config" or action is None or getattr(action, "_typehint", None) is None:
            return f"--{key}: {_first_line(detail)} (see {where})"
        given = _given(argv, key)
        got = f" {given!r} is not valid:" if given is not None else ":"
        return f"--{key}{got} expects {describe(action._typehint)} (see {where})"
    if match := re.match(r"unrecognized arguments: (\S+)", message):
        option = match[1].split("=", 1)[0]
        return f"imdb {subcommand} has no option {option}{_suggest(parser, option)} (see {where})"
    if match := re.match(r"Subcommand '(\w+)' does not accept option '([^']+)'", message):
        key = match[2]
        suggestion = _suggest(parser, f"--{key}").replace("--", "")
        return f"imdb {match[1]} has no setting {key} (in a config file){suggestion} (see {where})"
    if match := re.match(r"the following arguments are required: (.*)", message):
        missing = [f"--{name.strip().split('.', 1)[-1]}" for name in match[1].split(",")]
        return f"imdb {subcommand} needs {' and '.join(missing)} (see {where})"
    if match := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
        return f"no command {match[1]!r}: choose from {match[2].replace(chr(39), '')} (see imdb --help)"
    return f"{_first_line(message)} (see {where})"


def describe(typehint) -> str:
    """What a type accepts, in words: ``one of head, tail, head_tail``, ``an integer or null``."""
    origin = typing.get_origin(typehint)
    if origin is typing.Literal:
        return "one of " + ", ".join(dict.fromkeys(map(str, typing.get_args(typehint))))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typehint)
        literals = [v for a in args if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
        parts = ["one of " + ", ".join(dict.fromkeys(map(str, literals)))] if literals else []
        parts += [describe(a) for a in args if typing.get_origin(a) is not typing.Literal and a is not NoneType]
        if NoneType in args:
            parts.append("null")
        return " or ".join(dict.fromkeys(parts))
    if origin in (list, tuple, set) or typehint in (list, tuple, set):
        return "a list such as [a, b]"
    if origin is dict or typehint is dict:
        return "a mapping such as {key: value}"
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if typehint in simple:
        return simple[typehint]
    if restrictions := getattr(typehint, "_restrictions", None):  # jsonargparse's PositiveInt, Share and the like
        kind = "an integer" if issubclass(typehint, int) else "a number"
        join = f" {getattr(typehint, '_join', 'and')} "
        bounds = (f"{_OPERATORS.get(op.__name__, op.__name__)}{value}" for op, value in restrictions)
        return f"{kind} {join.join(bounds)}"
    if origin is collections.abc.Callable:
        returned = typing.get_args(typehint)[-1]
        classes = typing.get_args(returned) or (returned,)
        return f"a subclass of {' or '.join(c.__name__ for c in classes)}, by name or import path"
    if isinstance(typehint, type):
        return f"a subclass of {typehint.__name__}, by name or import path"
    return str(typehint)


def _action(parser, key: str):
    return getattr(parser, "_option_string_actions", {}).get(f"--{key}")


def _given(argv: list[str], key: str) -> str | None:
    """The value given to ``--key`` on the command line; ``None`` when it came from a config file."""
    for i, arg in enumerate(argv):
        if arg == f"--{key}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{key}="):
            return arg.split("=", 1)[1]
    return None


def _suggest(parser, option: str) -> str:
    options = [o for o in getattr(parser, "_option_string_actions", {}) if o.startswith("--")]
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())
