"""Command-line flags generated from the fields of a config dataclass (``training.config``): the
name gives ``--flag-name`` (or ``metadata["flag"]``), the annotation the type, and the field's
default, ``help``, ``when_none`` and ``choices`` the rest, so help text is written once."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing

METAVARS = {int: "N", float: "X"}


def add_config_flags(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One flag per field of the dataclass ``cls``, in a help section named ``title``."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        _add_flag(group, cls, f, _base_type(hints[f.name]))


def config_from_args(cls: type, args: argparse.Namespace):
    """Build ``cls`` by keyword from the parsed flags (its checks run in ``__post_init__``)."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def flag_name(f: dataclasses.Field) -> str:
    return "--" + f.metadata.get("flag", f.name).replace("_", "-")


def default_text(f: dataclasses.Field) -> str:
    """What ``(default: ...)`` says for a field."""
    if f.default is None:
        return f.metadata["when_none"]
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return str(f.default)


def _add_flag(group, cls: type, f: dataclasses.Field, typ: type) -> None:
    if "help" not in f.metadata or (f.default is None and "when_none" not in f.metadata):
        raise TypeError(f"{cls.__name__}.{f.name} needs metadata 'help' (and 'when_none' for a None default)")
    flag = flag_name(f)
    text = f"{f.metadata['help']} (default: {default_text(f)})".replace("%", "%%")
    if typ is bool:  # --name / --no-name
        action = group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default)
        action.help = text  # set after: some Python versions append their own default text to a given help
        return
    choices = f.metadata.get("choices")
    metavar = None if choices else METAVARS.get(typ) or flag[2:].upper().replace("-", "_")
    group.add_argument(flag, dest=f.name, type=typ, default=f.default, choices=choices, metavar=metavar, help=text)


def _base_type(hint) -> type:
    """``int | None`` -> ``int``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint
