"""While a server runs, the cyclic GC stays off the request path: the heap built at start-up is
frozen out of its reach and young collections are rarer; a process that goes on after the server
(a test's) gets its GC back as it was."""

import gc

import httpx

from service.runtime.lifecycle import YOUNG_GC_THRESHOLD

from ..serving import make_store, serve


def test_the_gc_is_quiet_while_serving_and_restored_after(tiny_dir, backbone, tmp_path):
    make_store(tmp_path / "s", backbone.fingerprint, backbone.d_model, tasks=1)
    before = gc.get_threshold()
    with serve(tiny_dir, tmp_path / "s") as (url, _):
        assert httpx.post(f"{url}/predict?task=t0", json={"inputs": "x"}).status_code == 200
        assert gc.get_threshold()[0] == max(before[0], YOUNG_GC_THRESHOLD)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
