"""Figures quoted in the docs come from the JSON they were measured into, never from a keyboard.

In a page, ``{{ fig SOURCE FIGURE [FORMAT] }}`` is replaced by one value when the site is built:

- SOURCE: a result name (``serve`` is ``bench/results/serve.json``) or a JSON path from the
  repository root (``demo/tasks.json``);
- FIGURE: a figure the result's table renderer names (``bench.tables``: ``batching_speedup``), or a
  path into the JSON: keys and list indexes joined by dots, ``[key=value]`` picks the list item whose
  key has that value (``[tasks=1000000].ready_s``);
- FORMAT: a Python format spec (``.2f``, ``,.0f``, ``.0%``); none: the value as it is.

``{{ setting NAME }}`` is the default of a server setting (``docsite.settings_reference``).

:func:`stray_figures` finds what looks like a measurement typed by hand in a page's prose (outside
code, macros and included tables): a number with a unit of time, rate, size or ratio, a
percentage, or a decimal of two or more places. A bound is not a measurement, so a number right
after ``≤ ≥ < >``, "at most", "at least", "up to", "default" or "target" is left alone; so is a line
that says ``<!-- not measured -->`` (say why beside it).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACRO = re.compile(r"\{\{\s*(fig|setting)\s+([^{}]*?)\s*\}\}")
_SEGMENT = re.compile(r"\[([^\]=]+)=([^\]]*)\]|([^.\[\]]+)")


class FigureError(ValueError):
    pass


@functools.cache
def _load(source: str) -> dict | list:
    path = ROOT / source if "/" in source or source.endswith(".json") else ROOT / "bench" / "results" / f"{source}.json"
    if not path.exists():
        raise FigureError(f"{path.relative_to(ROOT)} does not exist")
    return json.loads(path.read_text())


@functools.cache
def _named(source: str) -> dict:
    if "/" in source:
        return {}
    from bench import tables

    try:
        return tables.figures(source, _load(source))
    except tables.NoRenderer:
        return {}


def lookup(source: str, figure: str):
    """The value of FIGURE in SOURCE (see the module's docstring)."""
    named = _named(source)
    if figure in named:
        return named[figure]
    value = _load(source)
    for m in _SEGMENT.finditer(figure):
        key, want, plain = m.groups()
        if plain is not None:
            if isinstance(value, list) and plain.lstrip("-").isdigit():
                value = value[int(plain)]
            elif isinstance(value, dict) and plain in value:
                value = value[plain]
            else:
                raise FigureError(f"{source}: no {plain!r} in {figure!r} (named figures: {', '.join(named) or 'none'})")
        else:
            items = (
                [v for v in value if isinstance(v, dict) and str(v.get(key)) == want] if isinstance(value, list) else []
            )
            if len(items) != 1:
                raise FigureError(f"{source}: {figure!r} selects {len(items)} items with {key} = {want}, not one")
            value = items[0]
    return value


def fig(source: str, figure: str, spec: str = "") -> str:
    value = lookup(source, figure)
    if value is None or isinstance(value, (dict, list)):
        raise FigureError(f"{source} {figure} is {type(value).__name__}, not a figure")
    try:
        return format(value, spec)
    except (ValueError, TypeError) as e:
        raise FigureError(f"{source} {figure}: format {spec!r} does not fit {value!r} ({e})") from None


def render(text: str, where: str = "page") -> str:
    """Replace every macro of ``text`` by its value; a macro that cannot be resolved raises FigureError."""

    def one(m: re.Match) -> str:
        verb, args = m.group(1), m.group(2).split()
        try:
            if verb == "fig":
                if len(args) not in (2, 3):
                    raise FigureError("fig takes SOURCE FIGURE [FORMAT]")
                return fig(*args)
            from .settings_reference import default_of

            if len(args) != 1:
                raise FigureError("setting takes one NAME")
            return default_of(args[0])
        except FigureError as e:
            raise FigureError(f"{where}: {m.group(0)}: {e}") from None

    return MACRO.sub(one, text)


# ---- figures typed by hand -------------------------------------------------------------------------
_NUMBER = r"(?<![\w.,/^-])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_UNIT = (
    r"(?:ms|µs|us|s|sec|seconds|min|minutes|h|hours|req/s|requests/s|rows/s|tokens/s|steps/s|jobs/s"
    r"|[GT]FLOP/s|[kKMGT]i?B|B|bytes|×|x|%)"
)
_RATE = r"(?:requests|rows|tokens|steps|jobs|tasks|bytes)\s(?:per|a)\s(?:second|request|task|row)\b"
_TIMES = r"(?:times|percent)(?:\s(?:faster|slower|more|less|fewer|larger|smaller|as|of))?\b"
MEASURED = re.compile(
    rf"{_NUMBER}\s?{_UNIT}(?![\w/])(?!\s?\d)"  # 14.8 s, 6,313 req/s, 2.92×, 236 B, 73% (not 512 × 6)
    rf"|{_NUMBER}\s{_RATE}|{_NUMBER}\s{_TIMES}"  # 324 requests per second, 2.9 times faster, 12 percent
    r"|(?<![\w.,^-])\d+\.\d{2,}(?!\.?\d)"  # 0.785, 3.44 (not a version: 2.13.0)
)
# a bound, maybe of a sum whose first term is a setting's name (blanked out with the inline code)
BOUND = re.compile(r"(?:[≤≥<>]|\bat most|\bat least|\bup to|\bdefault(?:s to)?:?|\btarget(?:s|ed)?:?)[\s+]*$", re.I)
EXEMPT = "<!-- not measured"
_FENCE = re.compile(r"^\s*(```|~~~)")
_MASKS = [
    re.compile(r"<!--.*?-->", re.S),  # comments
    MACRO,
    re.compile(r"(`+)(?:(?!\1).)+?\1"),  # inline code
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"^\s*-{2}8<-{2}.*$", re.M),  # snippet includes
    re.compile(r"<[^>\n]+>"),  # HTML tags and their attributes
]


def _blank(m: re.Match) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def prose(text: str) -> str:
    """``text`` with everything that is not prose (code, comments, macros, links, includes) blanked
    out, line for line."""
    lines, fenced = [], None
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fenced:
            lines.append("")
            if m and m.group(1) == fenced:
                fenced = None
        elif m:
            fenced = m.group(1)
            lines.append("")
        else:
            lines.append(line)
    out = "\n".join(lines)
    for mask in _MASKS:
        out = mask.sub(_blank, out)
    return out


def stray_figures(text: str) -> list[tuple[int, str]]:
    """(line number, figure) for every measurement-like figure typed into ``text``'s prose."""
    found = []
    originals = text.split("\n")
    for i, line in enumerate(prose(text).split("\n")):
        if EXEMPT in originals[i]:
            continue
        for m in MEASURED.finditer(line):
            if not BOUND.search(line[: m.start()]):
                found.append((i + 1, m.group(0).strip()))
    return found
