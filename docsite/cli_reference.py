"""The command-line reference page, walked from ``mpt_cli.main.build_parser()``: every command and
flag with its help, so that nothing of it is kept by hand. A command that hands the rest of its
line to another program (``mpt serve``) shows that program's own ``--help``."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Iterator

# commands whose flags are parsed elsewhere: the lines whose --help is shown instead of a table
PASSED_ON = {"serve": (["serve", "--help"], ["serve", "--ray", "--help"])}


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(command path, its parser, its one-line help) for every command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias
                    continue
                seen.add(id(sub))
                yield path + (name,), sub, helps.get(name, "")
                yield from commands(sub, path + (name,))


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;") or "–"


def _flag(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or action.dest.upper()
            names += f" `{' '.join(metavar) if isinstance(metavar, tuple) else metavar}`"
        return names
    return f"`{action.metavar or action.dest}`"


def _default(action: argparse.Action) -> str:
    d = action.default
    if d is None or d is argparse.SUPPRESS or action.nargs == 0 or isinstance(action, argparse._HelpAction):
        return "–" if not action.required else "required"
    return f"`{_cell(d if not isinstance(d, (list, tuple)) else ' '.join(map(str, d)))}`"


def _arguments(parser: argparse.ArgumentParser) -> str:
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        help_text = formatter._expand_help(action) if action.help else ""
        if action.choices and not isinstance(action.choices, dict):
            help_text += f" (one of: {', '.join(map(str, action.choices))})"
        default = _default(action)
        if default not in ("–", "required"):  # the column says it: drop the help's own "(default: X)"
            help_text = re.sub(r"\s*\(default:? [^()]*\)\s*$", "", help_text)
        rows.append(f"| {_flag(action)} | {default} | {_cell(help_text)} |")
    if not rows:
        return ""
    return "\n".join(["| argument | default | help |", "| --- | --- | --- |", *rows])


def _help_of(argv: list[str]) -> str:
    """What ``mpt ARGV`` prints (its --help), captured in this process."""
    from mpt_cli.main import main

    out = io.StringIO()
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main(argv)
    except ImportError as e:  # a missing extra: say so rather than fail the site
        return f"(mpt {' '.join(argv)} needs an extra that is not installed here: {e})"
    finally:
        if columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = columns
    return out.getvalue().rstrip()


def page() -> str:
    from mpt_cli.main import build_parser

    root = build_parser()
    parts = [
        "# Command line\n",
        f"{_cell(root.description)}\n",
        "Every command prints JSON (or JSON lines) on success and one line on stderr with exit status 2 on a "
        "usage or input error (`MPT_DEBUG=1` shows the traceback). This page is generated from the parser "
        "when the site is built.\n",
    ]
    for path, parser, summary in commands(root):
        depth = min(len(path) + 1, 4)
        parts.append(f"{'#' * depth} mpt {' '.join(path)}\n")
        description = parser.description or summary
        if description:
            parts.append(f"{_cell(description)}\n")
        if path[-1] in PASSED_ON and len(path) == 1:
            for argv in PASSED_ON[path[-1]]:
                parts.append(f"`mpt {' '.join(argv)}`:\n\n```text\n{_help_of(argv)}\n```\n")
            continue
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # a group: its commands follow
        parts.append(f"```text\n{parser.format_usage().strip()}\n```\n")
        table = _arguments(parser)
        if table:
            parts.append(table + "\n")
    return "\n".join(parts)
