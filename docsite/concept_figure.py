"""The figure of the concepts page: a task prompt composed as ``P_k = P* ∘ (u vᵀ)`` and prepended to
the input of the frozen encoder. Written as plain SVG (no plotting library), deterministically:

    python -m docsite.concept_figure          # -> docs/assets/composition.svg
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "assets" / "composition.svg"
L, D, N = 6, 12, 5  # prompt rows, width, input tokens drawn (the real l, d are 100 and 768 for t5-base)
CELL = 14
FONT = "font-family='Helvetica, Arial, sans-serif'"
INK, MUTED, FROZEN = "#1f2933", "#616e7c", "#e4e7eb"


def _color(x: float) -> str:
    """Diverging blue - white - red for x in [-1, 1]."""
    x = max(-1.0, min(1.0, x))
    lo, mid, hi = (33, 102, 172), (247, 247, 247), (178, 24, 43)
    a, b = (mid, hi) if x >= 0 else (mid, lo)
    t = abs(x)
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(a, b))


def _grid(x: float, y: float, values: list[list[float]], label: str = "", sub: str = "") -> list[str]:
    rows, cols = len(values), len(values[0])
    out = [
        f"<rect x='{x + c * CELL}' y='{y + r * CELL}' width='{CELL}' height='{CELL}' fill='{_color(values[r][c])}' "
        f"stroke='white' stroke-width='1'/>"
        for r in range(rows)
        for c in range(cols)
    ]
    out.append(f"<rect x='{x}' y='{y}' width='{cols * CELL}' height='{rows * CELL}' fill='none' stroke='{INK}'/>")
    cx = x + cols * CELL / 2
    if label:
        out.append(_text(cx, y - 10, label, 17, weight="bold"))
    if sub:
        out.append(_text(cx, y + rows * CELL + 20, sub, 14, MUTED))
    return out


def _text(
    x: float, y: float, s: str, size: int = 14, color: str = INK, weight: str = "normal", anchor: str = "middle"
) -> str:
    s = s.replace("&", "&amp;").replace("<", "&lt;")
    style = f"{FONT} font-size='{size}' font-weight='{weight}' fill='{color}' text-anchor='{anchor}'"
    return f"<text x='{x}' y='{y}' {style}>{s}</text>"


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='{INK}' stroke-width='1.6' marker-end='url(#head)'/>"


def svg() -> str:
    rng = random.Random(7)
    shared = [[rng.uniform(-1, 1) for _ in range(D)] for _ in range(L)]
    u = [rng.uniform(0.3, 1.4) for _ in range(L)]
    v = [rng.uniform(0.3, 1.4) for _ in range(D)]
    task = [[shared[r][c] * u[r] * v[c] for c in range(D)] for r in range(L)]
    inputs = [[rng.uniform(-0.8, 0.8) for _ in range(D)] for _ in range(N)]
    w, h, gw, mid = 750, 420, D * CELL, 46 + L * CELL / 2
    g = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w}' height='{h}' role='img' "
        "aria-label='P_k = P* composed with u v transposed, prepended to the input of the frozen encoder'>",
        "<defs><marker id='head' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
        f"orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{INK}'/></marker></defs>",
        f"<rect width='{w}' height='{h}' fill='white'/>",
    ]
    # top row: P* ∘ (u vᵀ) = P_k
    x0, top = 20, 46
    g += _grid(x0, top, shared, "P*", "shared by the family")
    g.append(_text(x0 + gw + 22, mid + 9, "∘", 30))
    g.append(_text(x0 + gw + 48, mid + 11, "(", 36, MUTED))
    xu = x0 + gw + 62
    g += _grid(xu, top, [[x - 1] for x in u], "u", "l")
    xv = xu + CELL + 12
    g += _grid(xv, top + (L - 1) * CELL / 2, [[x - 1 for x in v]], "vᵀ", "")
    g.append(_text(xv + gw / 2, top + (L + 1) * CELL / 2 + 18, "d", 13, MUTED))
    g.append(_text(xv + gw + 14, mid + 11, ")", 36, MUTED))
    g.append(_text(xv + gw + 44, mid + 9, "=", 30))
    g += _grid(xv + gw + 70, top, task, "Pₖ", "the task's prompt, l × d")
    # bottom row: [P_k ; x] -> frozen encoder -> decoder -> answer
    y2 = 250
    g.append(_text(x0 + gw / 2, y2 - 14, "the encoder's input", 16, weight="bold"))
    g += _grid(x0, y2, task, "", "")
    g += _grid(x0, y2 + L * CELL + 6, inputs, "", "")
    g.append(_text(x0 + gw + 12, y2 + L * CELL / 2 + 5, "Pₖ: l prompt rows", 14, MUTED, anchor="start"))
    g.append(
        _text(x0 + gw + 12, y2 + L * CELL + 6 + N * CELL / 2 + 5, "x: the input's tokens", 14, MUTED, anchor="start")
    )
    g.append(_text(x0 + gw / 2, y2 + (L + N) * CELL + 30, "attention mask extended with ones", 13, MUTED))
    bx, by, bw, bh = 390, y2 + 8, 150, 110
    g.append(_arrow(x0 + gw + 160, by + bh / 2, bx - 4, by + bh / 2))
    for x, label, sub in ((bx, "T5 encoder", "frozen"), (bx + 190, "T5 decoder", "frozen, not prefixed")):
        g.append(f"<rect x='{x}' y='{by}' width='{bw}' height='{bh}' rx='10' fill='{FROZEN}' stroke='{INK}'/>")
        g.append(_text(x + bw / 2, by + bh / 2 - 2, label, 16, weight="bold"))
        g.append(_text(x + bw / 2, by + bh / 2 + 20, sub, 13, MUTED))
    g.append(_arrow(bx + bw + 4, by + bh / 2, bx + 186, by + bh / 2))
    g.append(_text(bx + 190 + bw / 2, by + bh + 30, "the answer, or a score", 14, MUTED))
    g.append(_text(bx + 190 + bw / 2, by + bh + 48, "per candidate", 14, MUTED))
    g.append("</svg>")
    return "\n".join(g) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(svg())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
