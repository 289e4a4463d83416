"""Options as dataclasses, turned into command lines.

Each stage keeps its options in a dataclass whose fields carry ``metadata={"help": ...}``
(and optionally ``"flag"``, ``"choices"``); :func:`parse_options` builds the argparse parser
from it, so one definition serves the console script, ``build/*.py`` and the Python API.
"""

from __future__ import annotations

import argparse
import dataclasses
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
        parser.add_argument(
            flag, dest=field.name, type=kind, default=default, required=required,
            choices=field.metadata.get("choices"),
            help=help_text + ("" if required else f" (default: {default})"),
        )
    return parser


def parse_options(cls: type[T], argv: Sequence[str] | None, *, prog: str, description: str | None) -> T:
    """Parse ``argv`` into an instance of dataclass ``cls`` (its ``__post_init__`` validates)."""
    namespace = build_parser(cls, prog=prog, description=description).parse_args(argv)
    check_work(getattr(namespace, "work", None))
    return cls(**vars(namespace))


def check_work(work: str | Path | None) -> None:
    """A ``--work`` that exists must be a folder (a file there would fail later, less clearly)."""
    if work is not None and Path(work).exists() and not Path(work).is_dir():
        raise InputError(f"--work {work}: a file, not a folder; expected the work folder")


def as_path(value: str | Path | None) -> Path | None:
    """Coerce an optional path-like option to :class:`Path`."""
    return None if value is None else Path(value)
