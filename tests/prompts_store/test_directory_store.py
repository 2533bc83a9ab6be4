import subprocess
import sys
import textwrap

import pytest
import torch

from mpt_core import Family, Task, check_compatible
from prompts_store import (
    Conflict,
    DirectoryStore,
    IncompatibleBackbone,
    InvalidArtifact,
    InvalidName,
    NotFound,
    family_from_bytes,
    family_to_bytes,
    task_from_bytes,
    task_to_bytes,
)

FP = {
    "model_id": "x",
    "d_model": 6,
    "vocab_size": 10,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "embedding_sha256": "ab",
}


def family(name="fam", l=4, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Family(name, torch.randn(l, d, generator=g), dict(FP, d_model=d))


def task(name="t", fam="fam", l=4, d=6, r=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return Task(name, fam, torch.randn(l, r, generator=g), torch.randn(d, r, generator=g))


def test_round_trip_is_exact(tmp_path):
    store = DirectoryStore(tmp_path)
    f, t = family(), task(r=2)
    v1 = store.put_family(f)
    v2 = store.put_task(t)
    assert v2 > v1 >= 1 and store.head() == v2
    f2, t2 = store.get_family("fam"), store.get_task("t")
    assert torch.equal(f2.shared, f.shared) and f2.fingerprint == f.fingerprint and f2.created_at == f.created_at
    assert torch.equal(t2.u, t.u) and torch.equal(t2.v, t.v) and t2.family == "fam" and t2.rank == 2
    assert store.list_families() == ["fam"] and store.list_tasks() == ["t"]
    assert store.task_info("t").rank == 2
    # the byte codecs round-trip too
    assert torch.equal(family_from_bytes(family_to_bytes(f)).shared, f.shared)
    assert torch.equal(task_from_bytes(task_to_bytes(t)).v, t.v)


def test_half_precision_is_accepted_and_stored_as_float32(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put_family(family())
    u = torch.randn(4, 1).to(torch.bfloat16)
    v = torch.randn(6, 1).to(torch.float16)
    store.put_task(Task("h", "fam", u, v))
    got = store.get_task("h")
    assert got.u.dtype == torch.float32 and torch.equal(got.u, u.float()) and torch.equal(got.v, v.float())


@pytest.mark.parametrize("bad", ["../x", "A B", "", "a" * 65, "Upper", "-lead", ".hidden", "a/b", None])
def test_bad_names_are_refused_with_the_name_in_the_message(tmp_path, bad):
    store = DirectoryStore(tmp_path)
    with pytest.raises(InvalidName) as e:
        store.get_task(bad)
    assert repr(bad) in str(e.value)
    with pytest.raises(InvalidName):
        Task(bad, "fam", torch.ones(4, 1), torch.ones(6, 1))
    with pytest.raises(InvalidName):
        Family(bad, torch.ones(4, 6), FP)
    assert list(tmp_path.rglob("*x*")) == []


def test_name_rule_accepts_the_longest_valid_name(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put_family(family())
    name = "a" + "b.c_d-" * 10 + "xyz"
    assert len(name) == 64
    store.put_task(task(name))
    assert store.has_task(name)


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_factors_are_refused(bad_value):
    u = torch.ones(4, 1)
    u[2, 0] = bad_value
    with pytest.raises(InvalidArtifact, match="non-finite"):
        Task("t", "fam", u, torch.ones(6, 1))


def test_mis_shaped_tensors_are_refused_with_the_problem_named(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put_family(family(l=4, d=6))
    with pytest.raises(InvalidArtifact, match="u has length 5, family 'fam' needs l=4"):
        store.put_task(Task("t", "fam", torch.ones(5, 1), torch.ones(6, 1)))
    with pytest.raises(InvalidArtifact, match="v has length 7, family 'fam' needs d=6"):
        store.put_task(Task("t", "fam", torch.ones(4, 1), torch.ones(7, 1)))
    with pytest.raises(InvalidArtifact, match="rank 2 but v has rank 1"):
        Task("t", "fam", torch.ones(4, 2), torch.ones(6, 1))
    with pytest.raises(InvalidArtifact, match="must be 2-D"):
        Task("t", "fam", torch.ones(4, 1, 1), torch.ones(6, 1))
    with pytest.raises(InvalidArtifact, match="dtype torch.int64"):
        Task("t", "fam", torch.ones(4, 1, dtype=torch.long), torch.ones(6, 1))
    assert store.list_tasks() == []


def test_missing_family_conflicts_and_deletes(tmp_path):
    store = DirectoryStore(tmp_path)
    with pytest.raises(NotFound, match="family 'fam' does not exist"):
        store.put_task(task())
    store.put_family(family())
    store.put_task(task())
    with pytest.raises(Conflict, match="already exists"):
        store.put_task(task())
    store.put_task(task(seed=5), overwrite=True)
    with pytest.raises(Conflict, match="used by 1 task"):
        store.delete_family("fam")
    store.delete_task("t")
    with pytest.raises(NotFound):
        store.delete_task("t")
    with pytest.raises(NotFound):
        store.get_task("t")
    store.delete_family("fam")
    assert store.list_families() == [] and store.list_tasks() == []


def test_corrupt_files_are_reported_not_unpickled(tmp_path):
    with pytest.raises(InvalidArtifact, match="not a valid safetensors"):
        task_from_bytes(b"\x80\x04K\x01.", name="t")  # a pickle, never loaded as one
    with pytest.raises(InvalidArtifact, match="expected tensors"):
        from safetensors.torch import save

        task_from_bytes(save({"u": torch.ones(4, 1)}, metadata={"family": "fam"}), name="t")


def test_crash_between_temp_write_and_rename_keeps_the_old_contents(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put_family(family())
    old = task(seed=1)
    store.put_task(old)
    version = store.head()
    child = textwrap.dedent(
        f"""
        import os, torch
        from mpt_core import Task
        from prompts_store import DirectoryStore
        store = DirectoryStore({str(tmp_path)!r})
        os.replace = lambda src, dst: os._exit(17)  # the process dies after the temp file is written
        store.put_task(Task("t", "fam", torch.zeros(4, 1), torch.zeros(6, 1)), overwrite=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert proc.returncode == 17, proc.stderr
    leftovers = list((tmp_path / "tasks").glob(".*.tmp"))
    assert len(leftovers) == 1  # the crash left its temp file behind

    got = store.get_task("t")  # readable, with the old contents
    assert torch.equal(got.u, old.u) and torch.equal(got.v, old.v)
    assert store.list_tasks() == ["t"] and store.head() == version

    DirectoryStore(tmp_path)  # opening the store again cleans up after the crash
    assert list((tmp_path / "tasks").glob(".*.tmp")) == []


def test_fingerprint_check_names_the_differences():
    check_compatible("fam", FP, dict(FP))
    with pytest.raises(IncompatibleBackbone, match="d_model: family has 6, backbone has 8"):
        check_compatible("fam", FP, dict(FP, d_model=8))
    with pytest.raises(IncompatibleBackbone, match="embedding_sha256"):
        check_compatible("fam", FP, dict(FP, embedding_sha256="cd"))


def test_fingerprint_ignores_dtype_and_path_but_not_weights(tiny_dir, backbone):
    from transformers import AutoModelForSeq2SeqLM

    from mpt_core import backbone_fingerprint

    bf16 = AutoModelForSeq2SeqLM.from_pretrained(str(tiny_dir), dtype=torch.bfloat16)
    check_compatible("fam", backbone.fingerprint, backbone_fingerprint(bf16, "elsewhere/t5"))
    with torch.no_grad():
        bf16.get_input_embeddings().weight[5] += 1.0
    with pytest.raises(IncompatibleBackbone):
        check_compatible("fam", backbone.fingerprint, backbone_fingerprint(bf16, "elsewhere/t5"))
