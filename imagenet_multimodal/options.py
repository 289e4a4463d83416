"""Options as dataclasses, turned into command lines.

Each stage keeps its options in a dataclass whose fields carry ``metadata={"help": ...}``
(and optionally ``"flag"``, ``"choices"``); :func:`parse_options` builds the argparse parser
from it, so one definition serves the console script, ``build/*.py`` and the Python API.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from .io import InputError

T = TypeVar("T")


def _base_type(annotation: object) -> object:
    """``Path | None`` -> ``Path``; other annotations unchanged."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def build_parser(cls: type, *, prog: str, description: str | None) -> argparse.ArgumentParser:
    """Build an :class:`argparse.ArgumentParser` with one option per field of dataclass ``cls``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = _base_type(hints[field.name])
        flag = field.metadata.get("flag", "--" + field.name.replace("_", "-"))
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        default = None if required else field.default
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(
                flag, dest=field.name, action=argparse.BooleanOptionalAction, default=default,
                help=help_text + ("" if required else f" (default: {'on' if default else 'off'})"),
            )
            continue
        # a default of None means "see the help text", which says what is used then
        shown = not (required or default is None or "default" in help_text)
        parser.add_argument(
            flag, dest=field.name, type=kind, default=default, required=required,
            choices=field.metadata.get("choices"), help=help_text + (f" (default: {default})" if shown else ""),
        )
    return parser


def parse_options(cls: type[T], argv: Sequence[str] | None, *, prog: str, description: str | None,
                  config_example: str | None = None) -> T:
    """Parse ``argv`` into an instance of dataclass ``cls`` (its ``__post_init__`` validates).

    With ``config_example`` (a file to name in the help), ``--config FILE`` reads option defaults
    from a JSON object; flags on the command line override them.
    """
    parser = build_parser(cls, prog=prog, description=description)
    if config_example is not None:
        parser.add_argument("--config", type=Path, help=f"JSON file of option defaults (e.g. {config_example}); "
                            "command-line flags override it")
        config = parser.parse_known_args(argv)[0].config
        if config is not None:
            parser.set_defaults(**_read_config(cls, config))
    namespace = vars(parser.parse_args(argv))
    namespace.pop("config", None)
    check_work(namespace.get("work"))
    return cls(**namespace)


def _read_config(cls: type, path: Path) -> dict:
    """The option defaults in JSON file ``path``, checked against the fields of ``cls``."""
    from .io import read_json

    if not path.is_file():
        raise InputError(f"--config {path}: no such file; expected a JSON object of options")
    config = read_json(path)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "work"}
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object of options, got {type(config).__name__} "
                         f"{json.dumps(config)[:80]}")
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise InputError(f"{path}: unknown options {unknown}; expected some of {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    for name, value in config.items():  # argparse checks the types and choices of flags, not of defaults
        optional = type(None) in typing.get_args(hints[name])
        label, fits = _CONFIG_TYPES.get(_base_type(hints[name]), (str(hints[name]), lambda v: True))
        if not (fits(value) if value is not None else optional):
            raise InputError(f"{path}: option {name!r}: expected {label}{' or null' if optional else ''}, "
                             f"got {value!r}")
        choices = fields[name].metadata.get("choices")
        if choices and value not in choices:
            raise InputError(f"{path}: option {name!r}: expected one of {choices}, got {value!r}")
    return config


# what a JSON value must be to stand for an option of each type (no silent coercion: the string
# "false" is not false, 2.7 is not an epoch count)
_CONFIG_TYPES = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    Path: ("a path string", lambda v: isinstance(v, str)),
}


def check_work(work: str | Path | None) -> None:
    """A ``--work`` that exists must be a folder (a file there would fail later, less clearly)."""
    if work is not None and Path(work).exists() and not Path(work).is_dir():
        raise InputError(f"--work {work}: a file, not a folder; expected the work folder")


def as_path(value: str | Path | None) -> Path | None:
    """Coerce an optional path-like option to :class:`Path`."""
    return None if value is None else Path(value)
