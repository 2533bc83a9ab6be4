"""The paper's split protocol (ATTEMPT's ``split_validation_test``, see ``registry.SplitRule``).

Shuffling uses ATTEMPT's procedure, ``torch.randperm`` on a CPU generator seeded with ``seed``
(ATTEMPT's default data seed is 42). Whether the rows come out identical to theirs also depends
on the raw row order and on torch keeping ``randperm`` unchanged; that is not checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .registry import SplitRule

DEV_SIZE = 1000  # rows carved out of train for large datasets


def permutation(n: int, seed: int) -> list[int]:
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def _halves(rows: Sequence, seed: int, group: Callable | None) -> tuple[list, list]:
    """First half of the shuffled rows, rest. With ``group``, whole groups move together (so a
    MultiRC question keeps all its answer options in one split)."""
    if group is None:
        units = [[r] for r in rows]
    else:
        by_key: dict = {}
        for i, r in enumerate(rows):
            by_key.setdefault(group(r, f"validation row {i}"), []).append(r)
        units = list(by_key.values())
    if len(units) < 2:
        raise ValueError(f"cannot halve a validation split of {len(units)} {'group' if group else 'row'}(s)")
    perm = permutation(len(units), seed)
    half = len(units) // 2
    return [r for i in perm[:half] for r in units[i]], [r for i in perm[half:] for r in units[i]]


def split_rows(
    rule: SplitRule, raw: dict[str, list], seed: int = 42, dev_size: int = DEV_SIZE, group: Callable | None = None
) -> dict[str, list]:
    """``{"train", "dev", "test"}`` rows from the raw splits named by ``rule``."""
    missing = [name for name in rule.raw_splits() if name not in raw]
    if missing:
        raise ValueError(f"raw split(s) {missing} needed by the {rule.kind} rule are missing (have {sorted(raw)})")
    if rule.kind == "given":
        return {role: list(raw[name]) for role, name in rule.raw.items()}
    if rule.kind == "carve_train":
        train = raw[rule.raw["train"]]
        if len(train) <= dev_size:
            raise ValueError(f"train has {len(train)} rows: too few to carve a dev split of {dev_size}")
        perm = permutation(len(train), seed)
        return {
            "train": [train[i] for i in perm[dev_size:]],
            "dev": [train[i] for i in perm[:dev_size]],
            "test": list(raw[rule.raw["test"]]),
        }
    if rule.kind == "halve_validation":
        dev, test = _halves(raw[rule.raw["validation"]], seed, group)
        return {"train": list(raw[rule.raw["train"]]), "dev": dev, "test": test}
    raise ValueError(f"unknown split rule {rule.kind!r}")
