"""Reading raw rows: a Hugging Face ``DatasetDict`` saved with ``save_to_disk`` (needs the
optional ``datasets`` package) or a directory of JSON Lines exports, one file per split
(``<split>.jsonl`` or ``<split>.json``, e.g. as written by ``Dataset.to_json``)."""

from __future__ import annotations

from pathlib import Path

from training.data.examples import read_jsonl as read_jsonl_objects


def is_hf_dataset_dict(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file()


def read_jsonl(path: Path) -> list[dict]:
    return [obj for _, obj in read_jsonl_objects(path)]


def _split_file(path: Path, split: str) -> Path | None:
    found = [p for p in (path / f"{split}.jsonl", path / f"{split}.json") if p.is_file()]
    if len(found) > 1:
        raise ValueError(f"{path}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


def load_raw_splits(path: str | Path, splits: list[str]) -> dict[str, list[dict]]:
    """The rows of the raw ``splits`` of the dataset at ``path``."""
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory (expected a save_to_disk DatasetDict or JSONL exports)")
    if is_hf_dataset_dict(path):
        return _load_hf(path, splits)
    if (path / "state.json").is_file():
        raise ValueError(f"{path} holds a single saved Dataset; save the whole DatasetDict (all splits) instead")
    out = {}
    for split in splits:
        file = _split_file(path, split)
        if file is None:
            present = sorted(p.name for p in path.iterdir() if p.suffix in (".jsonl", ".json"))
            raise ValueError(f"{path}: no {split}.jsonl (or {split}.json); found: {present or 'nothing'}")
        out[split] = read_jsonl(file)
    return out


def _load_hf(path: Path, splits: list[str]) -> dict[str, list[dict]]:
    try:
        from datasets import load_from_disk
    except ImportError:
        raise ValueError(
            f"{path} is a Hugging Face save_to_disk directory: reading it needs the `datasets` package "
            "(pip install datasets), or export the splits as JSONL with Dataset.to_json"
        ) from None
    dd = load_from_disk(str(path))
    missing = [s for s in splits if s not in dd]
    if missing:
        raise ValueError(f"{path}: no split(s) {missing}; has {sorted(dd)}")
    return {s: [dict(r) for r in dd[s]] for s in splits}
