"""Opening stores by URL, copying whole stores between backends, stats, and the change feed's cost."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from prompts_store import (
    ChangesUnavailable,
    Conflict,
    DirectoryStore,
    NotFound,
    SQLiteStore,
    StoreError,
    UnsupportedStore,
    copy_store,
    init_store,
    open_store,
    parse_store_url,
    store_stats,
)
from prompts_store.backends.journal import Entry, Journal
from prompts_store.backends.sqlite_schema import LATEST

from .helpers import ROOT, make_family, make_task, same_task

DEMO = ROOT / "demo" / "store"


def test_urls_choose_the_backend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_store_url("sqlite:///data/s.db") == ("sqlite", "data/s.db")
    assert parse_store_url("sqlite:////abs/s.db") == ("sqlite", "/abs/s.db")
    assert parse_store_url("file:///abs/dir") == ("file", "/abs/dir")
    assert parse_store_url("some/dir") == ("file", "some/dir")
    with open_store("sqlite:///data/s.db") as s:
        assert isinstance(s, SQLiteStore) and (tmp_path / "data" / "s.db").is_file()
    with open_store(f"sqlite:///{tmp_path / 'abs.db'}") as s:
        assert s.path == tmp_path / "abs.db" and s.url == f"sqlite:///{tmp_path / 'abs.db'}"
    assert isinstance(open_store("plain"), DirectoryStore)
    assert open_store(f"file://{tmp_path / 'viaurl'}").root == tmp_path / "viaurl"

    assert parse_store_url("postgres://u@h/db") == ("postgresql", "postgres://u@h/db")  # libpq reads the URL
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://user@/db?host=/nonexistent-socket-dir")
    with pytest.raises(UnsupportedStore, match="unknown scheme 'redis'"):
        open_store("redis://host")
    with pytest.raises(UnsupportedStore, match="in-memory database cannot be shared"):
        open_store("sqlite://")
    with pytest.raises(StoreError, match="for a SQLite store write sqlite:///data/s.db"):
        open_store("data/s.db")  # a plain path is a directory store; this one is a SQLite file
    with pytest.raises(StoreError, match="is a directory"):
        open_store("sqlite:///plain")
    with pytest.raises(NotFound, match="no prompt store"):
        open_store("sqlite:///missing.db", create=False)
    with pytest.raises(NotFound, match="no prompt store"):
        open_store("missing-dir", create=False)
    with pytest.raises(StoreError, match="not a usable SQLite prompt store"):
        (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
        open_store("sqlite:///junk.db")


def test_copy_demo_to_sqlite_to_a_new_directory_is_byte_identical(tmp_path):
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    first = copy_store(DEMO, db, progress=False)
    demo = DirectoryStore(DEMO, create=False)
    assert first["tasks"] == demo.count_tasks() > 0 and first["families"] == 1 and first["skipped"] == {}
    second = copy_store(db, tmp_path / "back", progress=False)
    assert second["tasks"] == first["tasks"]

    back = open_store(tmp_path / "back")
    assert back.list_tasks() == demo.list_tasks() and back.list_families() == demo.list_families()
    for name in demo.list_tasks():
        a, b = demo.get_task(name), back.get_task(name)
        assert same_task(a, b) and a.u.numpy().tobytes() == b.u.numpy().tobytes()
    for name in demo.list_families():
        a, b = demo.get_family(name), back.get_family(name)
        assert torch.equal(a.shared, b.shared) and (a.fingerprint, a.created_at, a.source) == (
            b.fingerprint,
            b.created_at,
            b.source,
        )
    # the task files carry the same tensor bytes as the committed demo's (safetensors orders the header's
    # metadata as it likes, so the headers are compared as data)
    for name in demo.list_tasks():
        a, b = demo.task_path(name).read_bytes(), (tmp_path / "back" / "tasks" / f"{name}.safetensors").read_bytes()
        assert _payload(a) == _payload(b) and _header(a) == _header(b)

    with pytest.raises(Conflict, match="already exists"):
        copy_store(DEMO, db, progress=False)
    assert copy_store(DEMO, db, overwrite=True, progress=False)["tasks"] == first["tasks"]


def _header(data: bytes) -> dict:
    return json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])


def _payload(data: bytes) -> bytes:
    return data[8 + int.from_bytes(data[:8], "little") :]


def test_stats_and_init(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert init_store(url) == {"backend": "sqlite", "url": url, "head": 0, "schema_version": LATEST}
    copy_store(DEMO, url, progress=False)
    stats = store_stats(url)
    demo = DirectoryStore(DEMO, create=False)
    n = demo.count_tasks()
    assert stats["tasks"] == n and stats["families"] == 1 and stats["head"] == n + 1
    assert stats["factor_bytes"] == n * (16 + 128) * 4 and stats["by_family"]["lab"]["tasks"] == n
    assert store_stats(DEMO)["factor_bytes"] == stats["factor_bytes"]


def test_a_store_without_a_journal_opens_and_starts_its_feed_at_its_version(tmp_path):
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(".lock", "journal"))
    version = int((root / "VERSION").read_text())
    store = open_store(root)
    assert store.head() == version and store.changes(version) == []
    with pytest.raises(ChangesUnavailable, match="reload the store in bulk"):
        store.changes(0)
    fam = store.list_families()[0]
    victim = store.list_tasks()[0]
    store.delete_task(victim)
    store.put_task(make_task("fresh", fam, l=16, d=128))
    assert (root / "journal").read_text().splitlines()[0].endswith(f"base={version}")
    assert [(c.seq, c.name, c.value is None) for c in store.changes(version)] == [
        (version + 1, victim, True),
        (version + 2, "fresh", False),
    ]


def test_the_directory_journal_survives_a_torn_line_and_a_lagging_version(tmp_path):
    store = DirectoryStore(tmp_path / "s")
    store.put_family(make_family())
    store.put_tasks([make_task(f"t{i}", seed=i) for i in range(3)])
    journal = tmp_path / "s" / "journal"
    with open(journal, "ab") as f:
        f.write(b"5 put task t9")  # a crash in the middle of an append: never acknowledged, file never written
    assert [c.name for c in store.changes(3)] == ["t2"]
    (tmp_path / "s" / "VERSION").write_text("2\n")  # a crash after the journal, before VERSION
    assert [c.name for c in store.changes(1)] == ["t0"]  # readers see only what VERSION committed

    again = DirectoryStore(tmp_path / "s")  # opening repairs: the torn line goes, VERSION catches up
    last = journal.read_bytes().splitlines()[-1].split()  # "4 put task t2 <commit time>"
    assert last[:4] == [b"4", b"put", b"task", b"t2"] and float(last[4]) > 0 and again.head() == 4
    assert again.put_task(make_task("t9", seed=9)) == 5 and [c.name for c in again.changes(4)] == ["t9"]


def test_the_journal_finds_a_sequence_by_bisection(tmp_path):
    journal = Journal(tmp_path / "journal")
    journal.create(base=10)
    journal.append([Entry(seq, "put", "task", f"t{seq % 977}") for seq in range(11, 50_011)])  # ~0.8 MB
    exact = {}  # seq -> byte offset of its line
    offset = len(journal.path.read_bytes().split(b"\n", 1)[0]) + 1
    for line in journal.path.read_bytes().split(b"\n")[1:-1]:
        exact[int(line.split()[0])] = offset
        offset += len(line) + 1
    with open(journal.path, "rb") as f:
        for since in (10, 11, 12, 4_999, 25_000, 49_999, 50_009):
            found = Journal(journal.path)._offset_after(f, since)  # a fresh reader: no remembered offset
            assert 0 <= exact[since + 1] - found <= 4096 + 32  # landed just before the line, not at the top
    assert [e.seq for e in journal.read(25_000, 50_010, limit=3)] == [25_001, 25_002, 25_003]
    assert journal._resume == (25_003, exact[25_004])  # the next read from 25,003 starts right there
    assert [e.seq for e in journal.read(25_003, 25_005, limit=None)] == [25_004, 25_005]
    assert journal.read(50_010, 50_010, None) == [] and journal.last_seq() == 50_010


@pytest.mark.parametrize("backend", ["sqlite", "directory"])
def test_one_change_at_20000_tasks_reads_one_task_record(tmp_path, backend):
    # the directory writes one fsynced file per task, so it is measured at 2,000 here: the property
    # (one record read per change, whatever the store holds) does not depend on the count
    n = 20_000 if backend == "sqlite" else 2_000
    url = f"sqlite:///{tmp_path / 's.db'}" if backend == "sqlite" else str(tmp_path / "s")
    writer = open_store(url)
    writer.put_family(make_family("fam", l=4, d=6))
    template = make_task("x", "fam")
    for start in range(0, n, 5000):
        writer.put_tasks(
            [type(template)(f"t{i:06d}", "fam", template.u, template.v) for i in range(start, start + 5000)][
                : n - start
            ]
        )

    reader = open_store(url)
    head = reader.head()
    loaded = sum(len(c) for c in reader.iter_task_chunks())
    assert loaded == n and reader.reads.tasks == n
    writer.put_task(make_task("t000123", "fam", seed=5), overwrite=True)
    before = reader.reads.tasks
    feed = reader.changes(head)
    assert [c.name for c in feed] == ["t000123"] and reader.reads.tasks - before == 1
    assert same_task(feed[0].value, make_task("t000123", "fam", seed=5))
    writer.close()
    reader.close()


def test_paths_in_a_url_and_as_objects_agree(tmp_path):
    with open_store(Path(tmp_path / "d")) as a, open_store(str(tmp_path / "d")) as b:
        a.put_family(make_family())
        assert b.list_families() == ["fam"]
