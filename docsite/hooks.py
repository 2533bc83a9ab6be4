"""MkDocs hooks (``mkdocs.yml``: ``hooks``): the reference pages are generated from the code, the
figure macros of every page are replaced by the values in the JSON they name, and the plots of
``bench/results`` are published beside the tables that ``docs/`` includes from there."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # mkdocs runs from its own script: bench/ and docsite/ are not installed
    sys.path.insert(0, str(ROOT))

from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

from docsite import figures  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def results_page() -> str:
    from bench import tables

    parts = [
        "# Measured results\n",
        "Every figure these docs quote was measured into a JSON file of `bench/results/` by the command named "
        "under its table; the tables are generated from those files (`python -m bench.tables`), and the files' "
        "history is their git history. Compare figures of one run only: each run is one machine at one time.\n",
    ]
    for name in tables.names():
        result = tables.load(name)
        body = tables.render(name, result).split("\n", 1)[1].strip()  # without the generated-file notice
        what = " ".join((tables.renderer(name, result).__doc__ or "").split())
        what = what.split("): ", 1)[-1].split(". ")[0].rstrip(".")  # "``x.json`` (``cmd``): what. More." -> what
        parts.append(f"## {name}\n\n`bench/results/{name}.json`: {what}.\n\n{body}\n")
    return "\n".join(parts)


def _generated() -> dict:
    from docsite import cli_reference, settings_reference

    return {
        "reference/cli.md": cli_reference.page,
        "reference/settings.md": settings_reference.page,
        "reference/results.md": results_page,
    }


def on_files(files, config):
    os.environ.setdefault("COLUMNS", "100")  # argparse's usage lines, as wide as a page
    for uri, make in _generated().items():
        try:
            content = make()
        except Exception as e:
            raise PluginError(f"generating {uri}: {type(e).__name__}: {e}") from e
        files.append(File.generated(config, uri, content=content))
    for png in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"assets/results/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):
    try:
        return figures.render(markdown, page.file.src_uri)
    except figures.FigureError as e:
        raise PluginError(str(e)) from None
