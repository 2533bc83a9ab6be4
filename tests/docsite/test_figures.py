"""Every figure the docs and the README quote comes from the JSON it was measured into: a figure is
either in a generated table that a page includes, or a `{{ fig ... }}` macro resolved from the JSON
when the site is built. A measurement typed into prose fails here, and so does a macro or an
include that points at nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import tables
from docsite import figures

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
INCLUDE = re.compile(r'^\s*-{2}8<-{2}\s+"([^":]+)(?::([\w-]+))?"', re.M)  # --8<-- "path[:section]"


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_no_measured_figure_is_typed_by_hand(page):
    stray = figures.stray_figures(page.read_text())
    assert not stray, (
        f"{_rel(page)} types measured figures by hand (line, figure): {stray}. Quote them with "
        "{{ fig RESULT FIGURE [FORMAT] }} or include the generated table; a bound or a default is not a "
        "measurement: write it after ≤ / ≥ / 'default', or end the line with <!-- not measured: why -->"
    )


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_macro_resolves_and_every_include_is_a_generated_table(page):
    text = page.read_text()
    figures.render(text, _rel(page))  # raises FigureError naming the macro
    for include, section in INCLUDE.findall(text):
        path = ROOT / include
        assert path.exists(), f"{_rel(page)} includes {include}, which does not exist"
        assert path.parent == tables.RESULTS and (path.with_suffix(".json")).exists(), (
            f"{_rel(page)} includes {include}: only tables generated from bench/results/*.json are included"
        )
        if section:
            assert f"--8<-- [start:{section}]" in path.read_text(), f"{_rel(page)}: {include} has no {section}"


def test_the_readme_quotes_no_macro():
    """GitHub shows the README as it is: a macro there would be shown raw."""
    assert not figures.MACRO.search((ROOT / "README.md").read_text())


def test_a_macro_gives_the_json_value():
    serve = json.loads((tables.RESULTS / "serve.json").read_text())
    scale = json.loads((tables.RESULTS / "scale.json").read_text())
    top = next(r for r in scale if r["tasks"] == 1_000_000)
    text = (
        "{{ fig serve throughput.batched_1task.rps .1f }} / {{ fig scale [tasks=1000000].ready_s }} / "
        "{{ fig serve batching_speedup .2f }} / {{ fig demo/tasks.json review.heldout_exact_match .3f }} / "
        "{{ setting max_queue }}"
    )
    demo = json.loads((ROOT / "demo" / "tasks.json").read_text())
    assert figures.render(text) == (
        f"{serve['throughput']['batched_1task']['rps']:.1f} / {top['ready_s']} / "
        f"{serve['targets']['batching_speedup']['value']:.2f} / {demo['review']['heldout_exact_match']:.3f} / 1024"
    )


@pytest.mark.parametrize(
    "macro",
    [
        "{{ fig serve throughput.nope }}",  # no such key
        "{{ fig nowhere x }}",  # no such result
        "{{ fig scale [tasks=7].ready_s }}",  # selects nothing
        "{{ fig serve throughput }}",  # not a single figure
        "{{ fig serve batching_speedup .2q }}",  # a bad format
        "{{ setting no_such_setting }}",
    ],
)
def test_a_macro_that_points_at_nothing_fails(macro):
    with pytest.raises(figures.FigureError):
        figures.render(f"text {macro} text")


def test_the_scan_finds_typed_measurements_and_leaves_the_rest():
    text = "\n".join(
        [
            "It answers 513 req/s, 5.78× more, ready in 14.8 s, 236 B a task, 73% yes, exact match 0.785.",
            "torch 2.13.0, l = 100, d 512 × 6 layers, 10⁶ tasks, `0.785 s` in code, [a](http://x/1.25s)",
            "at most 30 s, ≥ 0.97, target: 3 s, default 16 MiB, 2x2, {{ fig serve batching_speedup .2f }}×",
            "```",
            "1.234 s inside a code block",
            "```",
            "324 requests per second, 2.9 times faster, 12 percent; 3 tasks, 4 layers",
            "about 5.5 s here <!-- not measured: an example of the exemption -->",
            "<!-- 3.33 s in a comment -->",
        ]
    )
    assert figures.stray_figures(text) == [
        (1, "513 req/s"),
        (1, "5.78×"),
        (1, "14.8 s"),
        (1, "236 B"),
        (1, "73%"),
        (1, "0.785"),
        (7, "324 requests per second"),
        (7, "2.9 times faster"),
        (7, "12 percent"),
    ]
