"""The store shared by several processes: the change feed across processes, concurrent writers,
crashes inside a write, and SQLite schema migrations racing at open."""

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from prompts_store import open_store
from prompts_store.backends.sqlite_schema import LATEST

from .helpers import ROOT, make_family, make_task, run_child, same_task

# A child process's preamble: the test helpers importable, argv[1] = the store URL.
PRELUDE = """
import os, sys
from prompts_store import open_store
from tests.prompts_store.helpers import make_family, make_task
store = open_store(sys.argv[1])
"""


def test_changes_written_by_another_process_are_read_here(store):
    store.put_family(make_family())
    store.put_task(make_task("keep", seed=1))
    head = store.head()
    run_child(
        PRELUDE
        + """
store.put_tasks([make_task(f"c{i}", seed=10 + i) for i in range(3)])
store.put_task(make_task("keep", seed=2), overwrite=True)
store.delete_task("c1")
""",
        store.url,
    )
    feed = store.changes(head)  # the same store object as before the other process wrote
    assert [(c.name, c.value is None) for c in feed] == [("c0", False), ("c2", False), ("keep", False), ("c1", True)]
    assert same_task(feed[2].value, make_task("keep", seed=2)) and feed[-1].seq == store.head() == head + 5


def test_two_writer_processes_lose_nothing_and_never_share_a_sequence(store, tmp_path):
    store.put_family(make_family())
    head = store.head()
    writer = (
        PRELUDE
        + """
import pathlib, time
prefix, gate = sys.argv[2], pathlib.Path(sys.argv[3])
(gate / f"ready-{prefix}").touch()
while not (gate / "go").exists():  # both writers start together, after their imports
    time.sleep(0.001)
for i in range(40):
    print(store.put_task(make_task(f"{prefix}{i:02d}", seed=i)), flush=True)
"""
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", writer, store.url, p, str(gate)], stdout=subprocess.PIPE, text=True, env=env
        )
        for p in ("x", "y")
    ]
    deadline = time.monotonic() + 120
    while len(list(gate.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (gate / "go").touch()
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    seqs = [[int(s) for s in out.split()] for out in outputs]
    for mine in seqs:
        assert mine == sorted(mine) and len(mine) == 40  # each writer sees its sequences increase
    every = sorted(seqs[0] + seqs[1])
    assert every == list(range(head + 1, head + 81))  # no duplicates, no gaps
    assert len(store.list_tasks()) == 80
    feed = store.changes(head)
    assert [c.seq for c in feed] == every and len({c.name for c in feed}) == 80


def test_a_crash_inside_a_write_leaves_it_absent_or_whole(store):
    store.put_family(make_family())
    store.put_task(make_task("old", seed=1))
    head = store.head()
    crash = (
        PRELUDE
        + """
import contextlib
begin = store._transaction

@contextlib.contextmanager
def dying():  # the process dies after the rows/files are written, before the transaction ends
    with begin() as tx:
        write = tx.write_tasks
        def write_then_die(*args):
            write(*args)
            os._exit(17)
        tx.write_tasks = write_then_die
        yield tx

store._transaction = dying
store.put_tasks([make_task("new", seed=5), make_task("old", seed=6)], overwrite=True)
"""
    )
    assert run_child(crash, store.url, check=False).returncode == 17

    again = open_store(store.url)  # opens after the crash
    old = again.get_task("old")
    if again.has_task("new"):  # the directory: files written, the feed catches up on open
        assert same_task(again.get_task("new"), make_task("new", seed=5)) and same_task(old, make_task("old", seed=6))
        assert {c.name for c in again.changes(head)} == {"new", "old"}
    else:  # SQLite: the uncommitted transaction is gone
        assert same_task(old, make_task("old", seed=1)) and again.head() == head and again.changes(head) == []
    seq = again.put_task(make_task("after", seed=7))
    assert seq == again.head() > head and again.changes(seq - 1)[0].name == "after"
    again.close()


def test_kill_9_keeps_every_acknowledged_write(store):
    store.put_family(make_family())
    writer = (
        PRELUDE
        + """
for i in range(100_000):
    store.put_task(make_task(f"k{i:05d}", seed=i))
    print(i, flush=True)  # acknowledged
"""
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", writer, store.url], stdout=subprocess.PIPE, text=True, env=env)
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 30 and time.monotonic() < deadline:
        acked.append(int(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(acked) == 30

    after = open_store(store.url)
    names = after.list_tasks()
    for i in acked:
        assert same_task(after.get_task(f"k{i:05d}"), make_task(f"k{i:05d}", seed=i))
    assert len(names) - len(acked) in (0, 1, 2)  # at most the write in flight, and it is whole
    for name in names:
        assert same_task(after.get_task(name), make_task(name, seed=int(name[1:])))
    after.put_task(make_task("z"))  # and the store takes writes again
    after.close()


def _schema_rows(path) -> list[tuple]:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT version FROM schema_version ORDER BY version").fetchall()


def test_migrations_are_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    with open_store(url) as s:
        s.put_family(make_family())
        assert s.schema_version() == LATEST
    with open_store(url) as s:  # opening again applies nothing and keeps the data
        assert s.list_families() == ["fam"] and s.schema_version() == LATEST
    assert _schema_rows(tmp_path / "s.db") == [(v,) for v in range(1, LATEST + 1)]
    with sqlite3.connect(tmp_path / "s.db") as c:
        c.execute("INSERT INTO schema_version (version, description) VALUES (?, 'from the future')", (LATEST + 1,))
    with pytest.raises(Exception, match="newer than this mpt-serve understands"):
        open_store(url)


def _open_at(url: str, go: float, family, results) -> None:
    while time.time() < go:  # every child leaves this loop at the same moment
        pass
    try:
        with open_store(url) as s:
            s.put_family(family)
        results.put("ok")
    except Exception as e:  # reported to the parent, which fails the test with it
        results.put(repr(e))


def test_processes_opening_a_fresh_sqlite_file_at_once_all_succeed(tmp_path):
    # forked children (no torch import to wait for) open each fresh file at one instant; several rounds
    ctx = multiprocessing.get_context("fork")
    families = [make_family(f"f{i}") for i in range(4)]
    for round_ in range(5):
        url = f"sqlite:///{tmp_path / f'fresh{round_}.db'}"
        results = ctx.Queue()
        go = time.time() + 0.3
        procs = [ctx.Process(target=_open_at, args=(url, go, f, results)) for f in families]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [results.get(timeout=5) for _ in procs] == ["ok"] * 4
        assert _schema_rows(tmp_path / f"fresh{round_}.db") == [(v,) for v in range(1, LATEST + 1)]
        with open_store(url) as s:
            assert s.list_families() == ["f0", "f1", "f2", "f3"] and s.head() == 4
