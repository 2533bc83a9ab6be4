"""Moving prompts to and from PEFT's ``MULTITASK_PROMPT_TUNING`` adapters.

PEFT stores ``prompt_embeddings`` [l, d] (= P*), ``prefix_task_cols`` [T, l, r] (= u per task)
and ``prefix_task_rows`` [T, r, d] (= vᵀ per task), with ``num_transformer_submodules=1`` meaning
only the encoder is prefixed, which is this project's model. Task order is PEFT's ``task_ids``;
the names travel in the safetensors metadata and in ``mpt_tasks.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import save as st_save

from mpt_core import Family, Task, validate_name
from prompts_store import InvalidArtifact, Store, read_safetensors
from prompts_store.backends.atomic import atomic_write

from .stages.stage import refuse_clashes, write_learnt

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
TASK_LIST = "mpt_tasks.json"


def export_peft(
    store: Store, family: str, tasks: Sequence[str] | None, out: str | Path, base_model: str | None
) -> dict:
    fam = store.get_family(family)
    names = list(tasks) if tasks else store.list_tasks(family=family)
    if not names:
        raise ValueError(f"family {family!r} has no tasks to export")
    members = [store.get_task(n) for n in names]
    for t in members:
        if t.family != family:
            raise ValueError(f"task {t.name!r} belongs to family {t.family!r}, not {family!r}")
    rank = max(t.rank for t in members)
    l, d = fam.length, fam.d
    cols = torch.zeros(len(members), l, rank)  # zero columns pad lower ranks: they add nothing to u vᵀ
    rows = torch.zeros(len(members), rank, d)
    for k, t in enumerate(members):
        cols[k, :, : t.rank] = t.u
        rows[k, : t.rank, :] = t.v.T
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"mpt_family": family, "mpt_tasks": json.dumps(names), "format": "pt"}
    weights = {"prompt_embeddings": fam.shared, "prefix_task_cols": cols, "prefix_task_rows": rows}
    atomic_write(out / ADAPTER_WEIGHTS, st_save(weights, metadata=meta))
    config = {
        "peft_type": "MULTITASK_PROMPT_TUNING",
        "task_type": "SEQ_2_SEQ_LM",
        "base_model_name_or_path": base_model or fam.fingerprint.get("model_id"),
        "num_virtual_tokens": l,
        "token_dim": d,
        "num_transformer_submodules": 1,
        "num_layers": fam.fingerprint.get("num_layers"),
        "num_tasks": len(members),
        "num_ranks": rank,
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "prompt_tuning_init_state_dict_path": None,
        "prompt_tuning_init_task": 0,
        "tokenizer_name_or_path": None,
        "inference_mode": True,
        "revision": None,
    }
    atomic_write(out / ADAPTER_CONFIG, json.dumps(config, indent=2).encode())
    atomic_write(out / TASK_LIST, json.dumps(names, indent=2).encode())
    return {"family": family, "tasks": names, "rank": rank, "out": str(out)}


def _trim_zero_rank(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop trailing rank columns that are zero in both u and v (padding added by an export)."""
    r = u.shape[1]
    while r > 1 and not u[:, r - 1].any() and not v[:, r - 1].any():
        r -= 1
    return u[:, :r].contiguous(), v[:, :r].contiguous()


def import_peft(
    store: Store,
    adapter_dir: str | Path,
    family: str,
    fingerprint: dict,
    task_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> dict:
    adapter_dir = Path(adapter_dir)
    validate_name(family, "family")
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    except FileNotFoundError:
        raise ValueError(f"{adapter_dir}: no {ADAPTER_CONFIG}") from None
    if config.get("peft_type") != "MULTITASK_PROMPT_TUNING":
        raise ValueError(f"{adapter_dir}: peft_type is {config.get('peft_type')!r}, expected 'MULTITASK_PROMPT_TUNING'")
    if config.get("num_transformer_submodules", 1) != 1:
        raise ValueError(
            f"{adapter_dir}: num_transformer_submodules={config['num_transformer_submodules']} also prefixes the "
            "decoder; mpt-serve prompts prefix the encoder only (num_transformer_submodules=1)"
        )
    weights_path = adapter_dir / ADAPTER_WEIGHTS
    if not weights_path.is_file():
        raise ValueError(f"{adapter_dir}: no {ADAPTER_WEIGHTS} (only safetensors adapters are read)")
    tensors, meta = read_safetensors(weights_path.read_bytes(), str(weights_path))
    missing = {"prompt_embeddings", "prefix_task_cols", "prefix_task_rows"} - set(tensors)
    if missing:
        raise InvalidArtifact(f"{weights_path}: missing tensors {sorted(missing)}")
    shared, cols, rows = tensors["prompt_embeddings"], tensors["prefix_task_cols"], tensors["prefix_task_rows"]
    n_tasks = cols.shape[0]
    if cols.ndim != 3 or rows.ndim != 3 or rows.shape[0] != n_tasks or cols.shape[2] != rows.shape[1]:
        raise InvalidArtifact(
            f"{weights_path}: prefix_task_cols {tuple(cols.shape)} / rows {tuple(rows.shape)} disagree"
        )
    if task_names is None:
        listed = adapter_dir / TASK_LIST
        task_names = (
            json.loads(meta["mpt_tasks"])
            if "mpt_tasks" in meta
            else (json.loads(listed.read_text()) if listed.is_file() else [f"{family}-task{k}" for k in range(n_tasks)])
        )
    if len(task_names) != n_tasks:
        raise ValueError(f"{n_tasks} tasks in the adapter but {len(task_names)} names given")
    fam = Family(family, shared, fingerprint, source=f"peft-import:{adapter_dir.name}")
    tasks = []
    for k, name in enumerate(task_names):
        u, v = _trim_zero_rank(cols[k].float(), rows[k].float().T)
        tasks.append(Task(name, family, u, v, source=f"peft-import:{adapter_dir.name}"))
        tasks[-1].check_fits(fam)
    refuse_clashes(store, [family], [t.name for t in tasks], overwrite)  # before any write
    write_learnt(store, [fam], tasks, overwrite)  # the tasks in one transaction: all or none
    return {"family": family, "tasks": list(task_names)}
