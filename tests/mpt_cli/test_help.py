"""Flags generated from the config dataclasses: every flag's help reads right, and each flag lands
on its field (by keyword)."""

import dataclasses
import re

import pytest

from mpt_cli.flags import config_from_args
from mpt_cli.main import build_parser, main
from training.config import AdaptConfig, DistillConfig, PromptConfig, TinyConfig, TrainConfig, WorkerConfig

COMMANDS = {
    ("train", "teachers"): (TrainConfig, PromptConfig),
    ("train", "distill"): (TrainConfig, DistillConfig),
    ("train", "adapt"): (TrainConfig, AdaptConfig),
    ("train", "spot"): (TrainConfig, PromptConfig),
    ("backbone", "tiny"): (TinyConfig,),
    ("worker",): (WorkerConfig,),
}


def help_entries(capsys, monkeypatch, argv) -> dict[str, str]:
    """``mpt ARGV --help`` as {option strings: help text, continuation lines joined}."""
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    entries, key = {}, None
    for line in capsys.readouterr().out.splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if m:
            key = m.group(1)
            entries[key] = m.group(2) or ""
        elif key and line.startswith("    "):
            entries[key] = (entries[key] + " " + line.strip()).strip()
        else:
            key = None
    return entries


def expected_default(f: dataclasses.Field) -> str:
    if f.default is None:
        return f.metadata["when_none"]
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return str(f.default)


@pytest.mark.parametrize("argv", list(COMMANDS), ids=" ".join)
def test_every_flag_says_its_meaning_and_its_default_once(capsys, monkeypatch, argv):
    entries = help_entries(capsys, monkeypatch, argv)
    for opts, text in entries.items():
        assert text, f"{opts}: no help"
        assert text.count("(default:") <= 1 and "None" not in text, f"{opts}: {text}"
        assert not re.search(r"\(default: --[\w-]+\)", text), f"{opts}: {text}"  # a bare flag, not its meaning
    for cls in COMMANDS[argv]:
        for f in dataclasses.fields(cls):
            flag = "--" + f.metadata.get("flag", f.name).replace("_", "-")
            (opts,) = [o for o in entries if re.match(rf"{flag}\b(?![-\w])", o)]
            want = f"{f.metadata['help']} (default: {expected_default(f)})"
            assert entries[opts] == " ".join(want.split()), opts


def test_adapt_help_reads_right(capsys, monkeypatch):
    entries = help_entries(capsys, monkeypatch, ["train", "adapt"])
    assert entries["--factor-lr X"] == "learning rate of the factors u, v (default: the --lr value)"
    assert entries["--warmup-steps N"] == "linear warmup steps (default: 5% of --steps)"
    assert entries["--schedule {linear,constant}"].endswith("(default: linear)")
    assert entries["--shots N"] == "k-shot: train on k examples per task (default: every training example)"


def test_flags_land_on_their_fields_by_keyword():
    argv = ["train", "distill", "--model", "m", "--task", "a=x", "--store", "s", "--family", "f"]
    args = build_parser().parse_args(
        argv + ["--lambda", "0.25", "--no-distill", "--kappa", "3", "--hidden", "both", "--lr", "0.05", "--seed", "7"]
    )
    dcfg, cfg = config_from_args(DistillConfig, args), config_from_args(TrainConfig, args)
    assert dcfg == DistillConfig(lam=0.25, distill=False, kappa=3, hidden="both")
    assert cfg == TrainConfig(lr=0.05, seed=7)
    args = build_parser().parse_args(
        ["train", "adapt", "--model", "m", "--task", "a=x", "--store", "s", "--family", "f"]
    )
    assert config_from_args(AdaptConfig, args) == AdaptConfig() and config_from_args(TrainConfig, args) == TrainConfig()
    args = build_parser().parse_args(["backbone", "tiny", "--out", "o", "--d-model", "48", "--heads", "6"])
    assert config_from_args(TinyConfig, args) == TinyConfig(d_model=48, heads=6)


def test_a_bad_setting_is_one_line_naming_the_value(capsys):
    code = main(["backbone", "tiny", "--out", "o", "--d-model", "30", "--heads", "4"])
    assert code == 2 and capsys.readouterr().err == "mpt: error: d_model=30 must be a positive multiple of heads=4\n"
    argv = ["train", "adapt", "--model", "m", "--task", "a=x", "--store", "s", "--family", "f", "--shots", "0"]
    assert main(argv) == 2 and capsys.readouterr().err == "mpt: error: shots=0 must be >= 1\n"
