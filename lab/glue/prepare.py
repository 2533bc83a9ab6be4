"""Stage 0: raw datasets -> task directories ``<out>/<task>/{train,dev,test}.jsonl``.

    python -m lab.glue.prepare --raw RAW --out DATA sources targets      # RAW/<name>/ for each
    python -m lab.glue.prepare --out DATA mnli=/data/glue_mnli rte=/data/rte.jsonl.d

A raw dataset is a ``save_to_disk`` DatasetDict directory or a directory of JSONL exports named
after the raw splits (``train.jsonl``, ``validation.jsonl``; MNLI: ``validation_matched`` and
``validation_mismatched``; Yelp: ``test``; PAWS: ``validation`` and ``test``). Group names:
``sources``, ``targets``, ``glue``, ``superglue``, ``mrqa``, ``others``, ``all``.
``<out>/manifest.json`` records how each task was made (sizes, seed, labels, metric).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .formats import LABEL_STYLES, format_row, target_labels
from .registry import BENCHMARKS, DATASETS, SOURCES, TARGETS, Spec, get_spec
from .sources import load_raw_splits
from .splits import DEV_SIZE, split_rows

GROUPS = {"sources": SOURCES, "targets": TARGETS, "all": tuple(DATASETS), **BENCHMARKS}
MANIFEST = "manifest.json"


def _row_id(row: dict) -> str:
    for key in ("idx", "id", "qid"):
        if key in row:
            return f" ({key} {row[key]})"
    return ""


def _subset(spec: Spec, rows: list[dict], split: str, path: Path) -> list[dict]:
    """MRQA: keep the rows of this subset when the raw data is the combined ``mrqa`` dataset."""
    if spec.subset is None or not rows or "subset" not in rows[0]:
        return rows
    kept = [r for r in rows if r.get("subset") == spec.subset]
    if not kept:
        present = sorted({str(r.get("subset")) for r in rows})
        raise ValueError(f"{path} {split}: no rows of subset {spec.subset!r} (subsets: {present})")
    return kept


def prepare_dataset(
    spec: Spec, source: str | Path, out: str | Path, seed: int = 42, label_style: str = "ids", dev_size: int = DEV_SIZE
) -> dict:
    """Format and split one dataset into ``<out>/<spec.name>/``; returns its manifest entry."""
    if label_style not in LABEL_STYLES:
        raise ValueError(f"label_style {label_style!r} is not one of {LABEL_STYLES}")
    source, out = Path(source), Path(out)
    raw = load_raw_splits(source, spec.split.raw_splits())
    raw = {name: _subset(spec, rows, name, source) for name, rows in raw.items()}
    parts = split_rows(spec.split, raw, seed, dev_size, group=spec.group)
    examples, skipped = {}, {}
    for split in ("train", "dev", "test"):
        examples[split], skipped[split] = [], 0
        for i, row in enumerate(parts[split]):
            where = f"{spec.name} {split} row {i}{_row_id(row)} of {source}"
            rows = format_row(spec, row, split, label_style, where)
            skipped[split] += not rows
            examples[split] += rows
        if not examples[split]:
            raise ValueError(f"{spec.name}: the {split} split is empty ({skipped[split]} rows without an answer)")
    _write_task_dir(out / spec.name, examples)
    return {
        "benchmark": spec.benchmark,
        "hf": spec.hf,
        "source": str(source),
        "kind": spec.kind,
        "metric": spec.metric,
        "label_style": label_style,
        "labels": target_labels(spec, label_style),
        "seed": seed,
        "split_rule": {
            "kind": spec.split.kind,
            "raw": dict(spec.split.raw),
            **({"dev_size": dev_size} if spec.split.kind == "carve_train" else {}),
        },
        "raw_rows": {split: len(rows) for split, rows in parts.items()},
        "examples": {split: len(rows) for split, rows in examples.items()},
        "skipped_unanswerable": skipped,
        "max_input_tokens": spec.max_input_tokens,
    }


def _write_task_dir(directory: Path, examples: dict[str, list[dict]]) -> None:
    """Write the split files into a fresh directory, then swap it in place of the old one."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split, rows in examples.items():
        with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(out: str | Path) -> dict:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return {"datasets": {}}
    return json.loads(path.read_text())


def update_manifest(out: str | Path, entries: dict[str, dict]) -> Path:
    manifest = read_manifest(out)
    manifest["datasets"].update(entries)
    path = Path(out) / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def resolve(items: list[str], raw_root: str | None) -> list[tuple[Spec, Path]]:
    """``NAME``, ``NAME=PATH`` or a group name -> (spec, raw path) pairs, in order, no repeats."""
    pairs: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if sep and not path:
            raise ValueError(f"{item!r}: give NAME=PATH or just NAME (with --raw)")
        names = GROUPS.get(name, (name,)) if not sep else (name,)
        for n in names:
            get_spec(n)
            if sep:
                pairs[n] = Path(path)
            elif raw_root is None:
                raise ValueError(f"{n}: no path; give {n}=PATH or --raw ROOT (read from ROOT/{n})")
            else:
                pairs[n] = Path(raw_root) / n
    return [(get_spec(n), p) for n, p in pairs.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.glue.prepare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "datasets",
        nargs="+",
        metavar="NAME[=PATH]",
        help=f"datasets ({', '.join(DATASETS)}) or groups ({', '.join(GROUPS)})",
    )
    ap.add_argument("--out", required=True, help="where the task directories and manifest.json go")
    ap.add_argument("--raw", help="root of the raw datasets: NAME is read from RAW/NAME")
    ap.add_argument("--seed", type=int, default=42, help="split seed (default: 42, ATTEMPT's)")
    ap.add_argument(
        "--label-style",
        choices=LABEL_STYLES,
        default="ids",
        help="class targets: ids (the paper's, default) or names (ClassLabel names, T5 style)",
    )
    ap.add_argument("--dev-size", type=int, default=DEV_SIZE, help="dev rows carved out of large train sets")
    args = ap.parse_args(argv)
    try:
        todo = resolve(args.datasets, args.raw)
        for spec, path in todo:
            entry = prepare_dataset(spec, path, args.out, args.seed, args.label_style, args.dev_size)
            update_manifest(args.out, {spec.name: entry})
            sizes = "  ".join(f"{k} {v}" for k, v in entry["examples"].items())
            print(f"{spec.name:<11} {sizes}  -> {Path(args.out) / spec.name}", flush=True)
    except (ValueError, OSError) as e:
        print(f"prepare: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
