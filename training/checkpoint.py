"""Checkpoints of a training run, in safetensors + JSON only (never pickle), written atomically.

    <run>/checkpoint/params-<step>.safetensors   current trainable tensors
    <run>/checkpoint/best-<step>.safetensors     best-on-dev tensors (when evaluated)
    <run>/checkpoint/optim-<step>.safetensors    optimizer tensors (Adam moments, step counters)
    <run>/checkpoint/state.json                  step, optimizer groups, sampler RNG, torch RNG, history

state.json is written last and names the step whose files it goes with, so a crash in the
middle of a save leaves the previous checkpoint whole; files of older steps are then removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from prompts_store.backends.atomic import atomic_write


def tensors_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the module's tensors, where they are (a device copy: no wait for the device).
    Never ``.cpu()`` alone: on the CPU that is the live tensor itself, which training goes on changing."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    atomic_write(path, st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    return st_load(Path(path).read_bytes())


def optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors = {f"{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items() if isinstance(v, torch.Tensor)}
    return tensors, {"param_groups": sd["param_groups"], "state_ids": sorted(sd["state"])}


def optimizer_from_files(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {int(i): {} for i in meta["state_ids"]}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state[int(i)][name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class Checkpointer:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "checkpoint"

    def exists(self) -> bool:
        return (self.dir / "state.json").is_file()

    def save(self, params: torch.nn.Module, opt: torch.optim.Optimizer, best: dict | None, state: dict) -> None:
        """``state`` must hold ``step``; it is stored with the optimizer groups and the torch RNG."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tag = str(state["step"])
        save_tensors(self.dir / f"params-{tag}.safetensors", tensors_of(params))
        if best is not None:
            save_tensors(self.dir / f"best-{tag}.safetensors", best)
        opt_tensors, opt_meta = optimizer_to_files(opt)
        save_tensors(self.dir / f"optim-{tag}.safetensors", opt_tensors)
        state = dict(state, optimizer=opt_meta, torch_rng=torch.get_rng_state().tolist(), has_best=best is not None)
        atomic_write(self.dir / "state.json", json.dumps(state).encode())  # written last: commits this step
        for old in self.dir.glob("*.safetensors"):
            if not old.stem.endswith(f"-{tag}"):
                old.unlink(missing_ok=True)

    def load(self, params: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[dict, dict | None]:
        state = json.loads((self.dir / "state.json").read_text())
        tag = str(state["step"])
        params.load_state_dict(load_tensors(self.dir / f"params-{tag}.safetensors"))
        optimizer_from_files(opt, load_tensors(self.dir / f"optim-{tag}.safetensors"), state["optimizer"])
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        best = load_tensors(self.dir / f"best-{tag}.safetensors") if state.get("has_best") else None
        return state, best
