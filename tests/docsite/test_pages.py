"""The site's structure: the README is the front door, every page is in the navigation, the
concepts figure is what its generator draws, and the reference pages generated from the code cover
every command, flag and setting."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from docsite import cli_reference, concept_figure, settings_reference

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _nav_pages(nav) -> list[str]:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_the_readme_is_the_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    commands = re.findall(r"^(make \w+)", text.split("```bash", 1)[1], re.M)
    assert commands[:2] == ["make serve", "make test"]
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), f"the README links to {link}, which does not exist"


def test_every_page_is_in_the_navigation_and_every_entry_exists():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    nav = _nav_pages(config["nav"])
    generated = {"reference/cli.md", "reference/settings.md", "reference/results.md"}
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - set(nav) == set(), "pages missing from mkdocs.yml's nav"
    assert set(nav) - pages - generated == set(), "nav entries without a page"


def test_the_concepts_figure_is_what_its_generator_draws():
    assert concept_figure.OUT.read_text() == concept_figure.svg(), "run `python -m docsite.concept_figure`"
    assert "composition.svg" in (DOCS / "concepts.md").read_text()


def test_the_cli_reference_has_every_command_and_flag():
    from mpt_cli.main import build_parser

    page = cli_reference.page()
    for path, parser, _ in cli_reference.commands(build_parser()):
        assert f"mpt {' '.join(path)}\n" in page
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in page, (path, flag)
    assert "--max-batch" in page  # `mpt serve`: the server's own --help
    assert "--replicas" in page  # `mpt serve --ray`


def test_the_settings_reference_has_every_setting_with_its_default():
    from service.runtime.ray_settings import RaySettings
    from service.settings import Settings

    page = settings_reference.page()
    for model, prefix in ((Settings, "MPT_"), (RaySettings, "MPT_RAY_")):
        for name in model.model_fields:
            assert f"`{prefix}{name.upper()}`" in page, name
    assert "| `MPT_MAX_QUEUE` | `1024` |" in page


class _Batching(BaseModel):
    """How rows are batched."""

    max_batch: int = Field(32, description="rows per forward pass")
    wait: list[int] = Field([1, 2], description="a list")


class _Nested(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MPT_")

    host: str = Field("127.0.0.1", description="where to listen")
    batching: _Batching = _Batching()
    token: str | None = Field(None, validation_alias="MPT_OLD_TOKEN")


def test_the_settings_walk_recurses_into_nested_models():
    rows = list(settings_reference.walk(_Nested, "MPT_"))
    assert [(r.env, r.default, r.section) for r in rows] == [
        ("MPT_HOST", "127.0.0.1", ""),
        ("MPT_MAX_BATCH", "32", "batching"),
        ("MPT_WAIT", "1,2", "batching"),
        ("MPT_OLD_TOKEN", "unset", ""),
    ]
    assert rows[1].description == "rows per forward pass"
