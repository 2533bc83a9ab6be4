"""What every table renderer shares: a markdown table, number formats, and the provenance line."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence


def table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A markdown table; ``align`` has one letter per column (l, r, c; default l)."""
    header = list(header)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    rule = [marks[a] for a in align.ljust(len(header), "l")[: len(header)]]
    lines = [header, rule, *([str(c) for c in r] for r in rows)]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def num(x: float | None, spec: str = ",.1f") -> str:
    """A number for a table cell; a missing one is a dash."""
    return "–" if x is None else format(x, spec)


def ratio(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}×"


def _first(result: dict | list) -> dict:
    return result[0] if isinstance(result, list) and result else result if isinstance(result, dict) else {}


def _machine(r: dict) -> str:
    m = r.get("machine") or r.get("machine_before") or {}
    parts = []
    if r.get("device_name"):
        parts.append(str(r["device_name"]))
    if isinstance(m, dict):
        if m.get("cpus"):
            parts.append(f"{m['cpus']} CPUs")
        if m.get("torch"):
            parts.append(f"torch {m['torch']}")
    if isinstance(r.get("versions"), dict) and r["versions"].get("torch"):
        parts.append(f"torch {r['versions']['torch']}")
    elif r.get("torch") and not (isinstance(m, dict) and m.get("torch")):
        parts.append(f"torch {r['torch']}")
    return ", ".join(parts)


def provenance(result: dict | list) -> str:
    """One line naming what produced the figures: the command(s), the machine, the date and commit
    when the result records them."""
    r = _first(result)
    sections = [r] if r.get("command") else [v for v in r.values() if isinstance(v, dict) and v.get("command")]
    # a long quoted argument (a run's free-text note) stays in the JSON, not in the caption
    commands = list(dict.fromkeys(re.sub(r"'[^']{40,}'", "'…'", str(s["command"])).strip() for s in sections))
    facts = [f for f in (_machine(sections[0] if sections else r), r.get("date"), r.get("commit")) if f]
    line = "Measured with " + ", ".join(f"`{c}`" for c in commands) if commands else "Measured"
    line += (f" ({'; '.join(str(f) for f in facts)})" if facts else "") + "."
    return f'<div class="mpt-provenance" markdown>\n\n{line}\n\n</div>'  # a caption on the site


def sentence(text: str) -> str:
    """A result's free-text description as a sentence: capitalised, ending with a full stop."""
    text = str(text).strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else ""
