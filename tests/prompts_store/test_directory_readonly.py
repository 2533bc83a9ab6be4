"""A directory store opened for reading (``create=False``) changes nothing: no folder, lock file,
temp-file cleanup or recovery, so a read-only store (the image's root-owned demo store read by the
``mpt`` user, a read-only mount) can be copied from. Writers keep their crash safety: the first
write through such an opening tidies and recovers under the lock."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prompts_store import DirectoryStore, copy_store, open_store

from .helpers import ROOT, make_family, make_task


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` (itself included): (mtime_ns, size)."""
    paths = [root, *root.rglob("*")]
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in paths}


def _store_as_a_crash_left_it(root: Path) -> None:
    store = DirectoryStore(root)
    store.put_family(make_family())
    store.put_tasks([make_task(f"t{i}", seed=i) for i in range(3)])
    (root / "VERSION").write_text("3\n")  # a crash after the journal line, before VERSION
    (root / "tasks" / ".t9.safetensors.tmp").write_bytes(b"half")  # and a temp file of an interrupted write
    (root / ".lock").unlink()  # as in the image: the demo store is copied without its lock file


def test_opening_for_reading_changes_nothing(tmp_path):
    src = tmp_path / "src"
    _store_as_a_crash_left_it(src)
    before = _snapshot(src)
    reader = open_store(src, create=False)
    assert reader.head() == 3 and [c.name for c in reader.changes(0)] == ["fam", "t0", "t1"]
    assert reader.list_tasks() == ["t0", "t1", "t2"] and reader.get_task("t2").name == "t2"
    assert sum(len(c) for c in reader.iter_task_chunks()) == 3 and reader.stats()["tasks"] == 3
    copy_store(src, tmp_path / "dst", progress=False)
    assert _snapshot(src) == before  # nothing created, written, removed or touched

    reader.put_task(make_task("t5", seed=5))  # a writer through it: tidies and recovers first
    assert not (src / "tasks" / ".t9.safetensors.tmp").exists()
    assert reader.head() == 5 and [c.name for c in reader.changes(3)] == ["t2", "t5"]


def test_a_reader_of_a_store_without_its_folders_sees_an_empty_store(tmp_path):
    (tmp_path / "bare").mkdir()
    bare = DirectoryStore(tmp_path / "bare", create=False)
    assert bare.list_tasks() == [] and bare.count_tasks() == 0 and list(bare.iter_task_chunks()) == []
    assert list((tmp_path / "bare").iterdir()) == []
    bare.put_family(make_family())  # the first write makes the layout
    assert bare.list_families() == ["fam"]


def test_mpt_store_copy_from_a_read_only_mount(tmp_path):
    """The compose `seed` service: `mpt store copy` from a store nobody may write to."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to make a private read-only bind mount")
    src, dst = tmp_path / "src", tmp_path / "dst"
    _store_as_a_crash_left_it(src)
    before = _snapshot(src)
    copy = f"{sys.executable} -m mpt_cli store copy {src} {dst} --no-progress"
    # a mount namespace of its own: the read-only bind mount is seen by this command only
    script = f"mount --bind {src} {src} && mount -o remount,bind,ro {src} && touch {src}/probe 2>/dev/null; {copy}"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.decode()[:200]}")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (src / "probe").exists()  # the mount was read-only
    assert _snapshot(src) == before
    assert DirectoryStore(dst, create=False).list_tasks() == ["t0", "t1", "t2"]


def test_the_image_gets_the_demo_store_without_a_writers_leftovers():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"demo/store/.lock", "demo/store/journal"} <= set(ignored)
