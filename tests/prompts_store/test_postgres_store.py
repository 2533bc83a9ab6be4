"""What only the PostgreSQL backend has: migrations racing at start-up, LISTEN/NOTIFY subscribers
(and their reconnect), commits that follow sequences under concurrent writers, rule checks under
the writers' lock, redacted URLs, and copies to and from it. The backend-generic tests
(test_store_contract.py, test_store_processes.py) run on it too."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time

import pytest

from prompts_store import Conflict, NotFound, StoreError, copy_store, open_store
from prompts_store.backends.postgres_schema import LATEST

from .helpers import ROOT, make_family, make_task, same_task
from .test_store_processes import PRELUDE

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg: pip install 'mpt-serve[postgres]'")
pytestmark = pytest.mark.usefixtures("postgres_server")


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as c:
        return [r[0] for r in c.execute("SELECT version FROM mpt_schema_version ORDER BY version")]


def _open_at(url: str, go: float, family, results) -> None:
    while time.time() < go:  # every child leaves this loop at the same moment
        pass
    try:
        with open_store(url) as s:
            s.put_family(family)
        results.put("ok")
    except Exception as e:  # reported to the parent, which fails the test with it
        results.put(repr(e))


def test_replicas_starting_at_once_on_a_fresh_database_all_succeed(postgres_server):
    ctx = multiprocessing.get_context("fork")
    families = [make_family(f"f{i}") for i in range(4)]
    for _ in range(3):
        url = postgres_server.new_database("race")
        results = ctx.Queue()
        go = time.time() + 0.3
        procs = [ctx.Process(target=_open_at, args=(url, go, f, results)) for f in families]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=60)
        assert [results.get(timeout=5) for _ in procs] == ["ok"] * 4
        assert _versions(url) == list(range(1, LATEST + 1))
        with open_store(url) as s:
            assert s.list_families() == ["f0", "f1", "f2", "f3"] and s.head() == 4 and s.schema_version() == LATEST


def test_migrations_are_idempotent_and_a_newer_schema_is_refused(postgres_url):
    with open_store(postgres_url) as s:
        s.put_family(make_family())
    with open_store(postgres_url) as s:
        assert s.list_families() == ["fam"] and s.schema_version() == LATEST
    assert _versions(postgres_url) == list(range(1, LATEST + 1))
    with psycopg.connect(postgres_url) as c:
        c.execute("INSERT INTO mpt_schema_version VALUES (%s, 'from the future')", (LATEST + 1,))
    with pytest.raises(StoreError, match="newer than this mpt-serve understands"):
        open_store(postgres_url)


def test_an_empty_database_is_no_store_without_create(postgres_url):
    with pytest.raises(NotFound, match="no prompt store in .*mpt store init"):
        open_store(postgres_url, create=False)
    with open_store(postgres_url) as s:  # create=True (the default) migrates it
        assert s.head() == 0
    with open_store(postgres_url, create=False) as s:
        assert s.schema_version() == LATEST


def test_a_password_never_appears_in_the_url_or_an_error():
    with pytest.raises(StoreError) as err:
        open_store("postgresql://someone:s3cret@/nodb?host=/nonexistent-socket-dir")
    assert "s3cret" not in str(err.value) and "someone:***@" in str(err.value)
    assert "\n" not in str(err.value)  # one line


def test_a_subscriber_is_woken_by_a_commit_in_another_process(postgres_url):
    store = open_store(postgres_url)
    store.put_family(make_family())
    woken: list[int | None] = []
    arrived = threading.Event()

    def wake(seq):
        woken.append(seq)
        arrived.set()

    unsubscribe = store.subscribe(wake)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PRELUDE + "store.put_tasks([make_task('a', seed=1), make_task('b', seed=2)])",
            postgres_url,
        ],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
    )
    assert proc.wait(timeout=60) == 0
    assert arrived.wait(5), f"no notification {time.perf_counter() - t0:.1f}s after the commit"
    assert woken == [3]  # one notification per transaction, carrying the new head
    assert [c.name for c in store.changes(1)] == ["a", "b"]

    unsubscribe()
    time.sleep(0.6)  # the listener thread notices it has no subscriber left
    store.put_task(make_task("c"))
    time.sleep(0.3)
    assert woken == [3]
    store.close()


def test_a_rolled_back_write_notifies_nobody(postgres_url):
    store = open_store(postgres_url)
    store.put_family(make_family())
    woken = []
    store.subscribe(woken.append)
    with pytest.raises(Conflict):
        store.put_family(make_family())
    store.put_task(make_task("t"))
    deadline = time.monotonic() + 5
    while not woken and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert woken == [2]
    store.close()


def test_the_listener_reconnects_and_wakes_its_subscribers(postgres_url):
    store = open_store(postgres_url)
    store.put_family(make_family())
    woken = []
    store.subscribe(woken.append)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%%' AND pid <> pg_backend_pid()"
        ).fetchall()
    assert killed == [(True,)]
    deadline = time.monotonic() + 10
    while None not in woken and time.monotonic() < deadline:  # the reconnect says "look now"
        time.sleep(0.02)
    assert woken == [None]
    store.put_task(make_task("after"))
    while len(woken) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert woken == [None, 2]
    store.close()


def test_subscribing_elsewhere_is_a_harmless_no_op(tmp_path):
    for url in (f"sqlite:///{tmp_path / 's.db'}", str(tmp_path / "dir")):
        with open_store(url) as s:
            woken = []
            unsubscribe = s.subscribe(woken.append)
            s.put_family(make_family())
            unsubscribe()
            assert woken == []


def test_a_reader_never_sees_a_gap_while_two_processes_write(postgres_url):
    # rule 4: a reader that sees sequence S sees every sequence below it; with distinct names the
    # feed read page by page must then be exactly since+1, since+2, ... with no hole ever skipped
    store = open_store(postgres_url)
    store.put_family(make_family())
    writer = (
        PRELUDE
        + """
prefix = sys.argv[2]
for i in range(40):
    store.put_task(make_task(f"{prefix}{i:02d}", seed=i))
"""
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", writer, postgres_url, p], env=env, cwd=ROOT) for p in "xy"]
    since, pages = 1, 0
    deadline = time.monotonic() + 120
    while since < 81 and time.monotonic() < deadline:
        page = store.changes(since, limit=7)
        assert [c.seq for c in page] == list(range(since + 1, since + 1 + len(page)))
        if page:
            since, pages = page[-1].seq, pages + 1
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert since == 81 == store.head() and pages > 1
    store.close()


def test_two_processes_creating_one_name_at_once_one_wins(postgres_url, tmp_path):
    # the rules are checked under the writers' lock: no lost "already exists"
    store = open_store(postgres_url)
    store.put_family(make_family())
    racer = (
        PRELUDE
        + """
import pathlib, time
gate = pathlib.Path(sys.argv[2])
while not gate.exists():
    time.sleep(0.0005)
from prompts_store import Conflict
for i in range(15):
    try:
        store.put_task(make_task(f"same{i}", seed=int(sys.argv[3])))
        print("won", i, flush=True)
    except Conflict:
        print("lost", i, flush=True)
"""
    )
    gate = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", racer, postgres_url, str(gate), str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for seed in (1, 2)
    ]
    time.sleep(1.5)  # both have imported and wait at the gate
    gate.touch()
    outs = [p.communicate(timeout=60)[0].split("\n") for p in procs]
    wins = sorted(line for out in outs for line in out if line.startswith("won"))
    assert wins == sorted(f"won {i}" for i in range(15))  # each name created exactly once
    assert store.count_tasks() == 15 and store.head() == 16
    store.close()


def test_copy_demo_to_postgres_and_back_is_byte_identical(postgres_url, tmp_path):
    demo = ROOT / "demo" / "store"
    first = copy_store(demo, postgres_url, progress=False)
    assert first["skipped"] == {} and first["tasks"] > 0
    second = copy_store(postgres_url, tmp_path / "back", progress=False)
    assert (second["tasks"], second["families"]) == (first["tasks"], first["families"])
    with open_store(demo, create=False) as a, open_store(tmp_path / "back", create=False) as b:
        assert a.list_tasks() == b.list_tasks()
        for name in a.list_tasks():
            x, y = a.get_task(name), b.get_task(name)
            assert same_task(x, y) and x.u.numpy().tobytes() == y.u.numpy().tobytes()
    sqlite = f"sqlite:///{tmp_path / 'copy.db'}"
    assert copy_store(postgres_url, sqlite, progress=False)["tasks"] == first["tasks"]
    with pytest.raises(Conflict, match="already exists"):
        copy_store(sqlite, postgres_url, progress=False)


def test_one_change_at_20000_tasks_reads_one_task_record(postgres_url):
    writer = open_store(postgres_url)
    writer.put_family(make_family("fam", l=4, d=6))
    template = make_task("x", "fam")
    for start in range(0, 20_000, 5000):
        writer.put_tasks(
            [type(template)(f"t{i:06d}", "fam", template.u, template.v) for i in range(start, start + 5000)]
        )
    reader = open_store(postgres_url)
    head = reader.head()
    assert sum(len(c) for c in reader.iter_task_chunks()) == 20_000 == reader.reads.tasks
    writer.put_task(make_task("t000123", "fam", seed=5), overwrite=True)
    before = reader.reads.tasks
    feed = reader.changes(head)
    assert [c.name for c in feed] == ["t000123"] and reader.reads.tasks - before == 1
    writer.close()
    reader.close()
