"""Stage 5: score stored prompts on prepared tasks with the paper's metrics, next to the paper.

    python -m lab.glue.evaluate --model t5-base --store STORE --data DATA --out RESULTS \
        [--datasets glue,superglue | rte,cola,...] [--task-suffix=-full] [--reference mpt]

For each dataset the store task ``<dataset><suffix>`` generates greedily on the ``test`` split
(the original validation data, see the split protocol) and the outputs are scored as the paper
does. Writes ``RESULTS/results.json``, ``RESULTS/results.md`` and the predictions
``RESULTS/predictions/<dataset>.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .metrics import score_rows
from .prepare import GROUPS, read_manifest
from .reference import SOURCE, get_reference
from .registry import BENCHMARKS, Spec, get_spec
from .sources import read_jsonl

Predict = Callable[[Spec, Sequence[dict]], list[str]]


def expand(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        for d in GROUPS.get(n, (n,)):
            get_spec(d)
            if d not in out:
                out.append(d)
    return out


def evaluate_datasets(
    data_dir: str | Path,
    datasets: Sequence[str],
    predict: Predict,
    split: str = "test",
    predictions_dir: str | Path | None = None,
) -> dict[str, dict]:
    """Metrics per dataset: ``predict(spec, rows)`` gives one output per prepared row."""
    manifest = read_manifest(data_dir)["datasets"]
    results = {}
    for name in datasets:
        spec = get_spec(name)
        if name not in manifest:
            raise ValueError(f"{name} is not prepared in {data_dir} (prepared: {sorted(manifest) or 'none'})")
        entry = manifest[name]
        path = Path(data_dir) / name / f"{split}.jsonl"
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
        rows = read_jsonl(path)
        preds = predict(spec, rows)
        if predictions_dir is not None:  # written first, so that they survive a scoring error
            out = Path(predictions_dir) / f"{name}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", encoding="utf-8") as f:
                for r, p in zip(rows, preds):
                    line = {"input": r["input"], "target": r["target"], "prediction": p}
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
        results[name] = {
            "split": split,
            "n": len(rows),
            "label_style": entry["label_style"],
            **score_rows(entry["metric"], preds, rows, entry["labels"]),
        }
    return results


def summarize(results: dict[str, dict], reference: str = "mpt") -> dict:
    """Per-dataset results with the paper's number, and benchmark averages of the ``score``s
    (only when every dataset of the benchmark was evaluated)."""
    ref = get_reference(reference)
    datasets = {n: {**r, "paper": ref["datasets"].get(n)} for n, r in results.items()}
    averages = {}
    for bench, names in BENCHMARKS.items():
        have = [n for n in names if n in results]
        if not have:
            continue
        missing = [n for n in names if n not in results]
        ours = None if missing else sum(results[n]["score"] for n in names) / len(names)
        averages[bench] = {"ours": ours, "paper": ref["averages"].get(bench), "missing": missing}
    return {
        "reference": reference,
        "reference_label": ref["label"],
        "reference_source": SOURCE,
        "datasets": datasets,
        "averages": averages,
    }


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


# metric -> (its name in the table, the key of the headline number)
HEADLINE = {
    "accuracy": ("acc", "accuracy"),
    "f1_accuracy": ("acc", "accuracy"),
    "mcc": ("MCC", "mcc"),
    "correlation": ("Pearson", "pearson"),
    "cb": ("acc", "accuracy"),
    "multirc": ("F1a", "f1a"),
    "qa": ("F1", "f1"),
}
EXTRA_KEYS = ("f1", "spearman", "macro_f1", "em", "accuracy", "unparsable", "invalid")


def markdown(summary: dict) -> str:
    lines = [
        f"| dataset | metric | ours | {summary['reference_label']} | Δ | n | other metrics |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in summary["datasets"].items():
        label, headline = HEADLINE[get_spec(name).metric]
        delta = None if r["paper"] is None else r["score"] - r["paper"]
        extra = ", ".join(
            f"{k} {r[k]:.1f}" if k not in ("unparsable", "invalid") else f"{k} {int(r[k])}"
            for k in EXTRA_KEYS
            if k in r and k != headline
        )
        lines.append(
            f"| {name} | {label} | {_fmt(r['score'])} | {_fmt(r['paper'])} | "
            f"{'—' if delta is None else f'{delta:+.1f}'} | {r['n']} | {extra} |"
        )
    for bench, a in summary["averages"].items():
        note = f" (missing: {', '.join(a['missing'])})" if a["missing"] else ""
        lines.append(f"| **{bench} average**{note} | | {_fmt(a['ours'])} | {_fmt(a['paper'])} | | | |")
    lines += [
        "",
        f"Paper numbers: {summary['reference_source']}. Scores on our test split (the original "
        "validation data), greedy decoding, one run; the paper reports the mean of 3 seeds.",
    ]
    return "\n".join(lines) + "\n"


def model_predictor(model: str, store_dir: str, suffix: str, batch_size: int, device: str, dtype: str) -> Predict:
    """Greedy generation with the stored prompt of task ``<dataset><suffix>``."""
    from mpt_core.backbone import load_backbone
    from prompts_store import DirectoryStore
    from training.data.batching import Collator
    from training.evaluate import generate, stored_prompt

    store = DirectoryStore(store_dir, create=False)
    backbone = load_backbone(model, device, dtype)

    def predict(spec: Spec, rows: Sequence[dict]) -> list[str]:
        task = spec.name + suffix
        if not store.has_task(task):
            raise ValueError(f"store {store_dir} has no task {task!r} (tasks: {store.list_tasks()})")
        golds = {a for r in rows for a in (r.get("answers") or [r["target"]])}
        max_new = max(len(backbone.tokenizer(g).input_ids) for g in golds) + 2
        collator = Collator(backbone.tokenizer, backbone.device, spec.max_input_tokens)
        return generate(backbone, stored_prompt(store, task), [r["input"] for r in rows], collator, batch_size, max_new)

    return predict


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lab.glue.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="backbone: t5-base or a local directory")
    ap.add_argument("--store", required=True)
    ap.add_argument("--data", required=True, help="the --out directory of prepare")
    ap.add_argument("--out", required=True, help="directory for results.json, results.md, predictions/")
    ap.add_argument("--datasets", default="targets", help="comma-separated datasets or groups (default: targets)")
    ap.add_argument("--task-suffix", default="", help="store task = dataset + suffix (e.g. -full)")
    ap.add_argument("--split", default="test", choices=["test", "dev"])
    ap.add_argument("--reference", default="mpt", help="paper numbers to compare with: mpt or mpt-mt")
    ap.add_argument("--skip-missing", action="store_true", help="leave out datasets that are not prepared")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args(argv)
    from prompts_store import StoreError

    try:
        get_reference(args.reference)
        datasets = expand([d for d in args.datasets.split(",") if d])
        if args.skip_missing:
            prepared = read_manifest(args.data)["datasets"]
            datasets = [d for d in datasets if d in prepared]
        predict = model_predictor(args.model, args.store, args.task_suffix, args.batch_size, args.device, args.dtype)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        results = evaluate_datasets(args.data, datasets, predict, args.split, out / "predictions")
        summary = {
            "model": args.model,
            "store": args.store,
            "task_suffix": args.task_suffix,
            **summarize(results, args.reference),
        }
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "results.md").write_text(markdown(summary))
    except (ValueError, OSError, RuntimeError, StoreError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 2
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
