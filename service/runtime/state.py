"""The composition root: the objects one server process holds and how they are wired.

The prompt table is built once here and handed to the engine (which reads it), the mutation path
(which alone writes it; the API and the store sync both go through it) and the read views. The
lifecycle (``lifecycle.py``) decides when these start and stop; routes receive them through the
dependencies in ``deps.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mpt_core.backbone import load_backbone
from prompts_store import Store, open_store

from ..inference.batcher import MicroBatcher
from ..inference.engine import Engine
from ..inference.request_path import RequestPath
from ..settings import Settings
from ..table.prompt_table import PromptTable
from .jobs import JobDesk
from .metrics import Metrics
from .mutations import Mutations
from .store_sync import StoreSync
from .store_work import StoreWork
from .views import Views


@dataclass(frozen=True)
class ServiceState:
    store: Store
    work: StoreWork  # the threads that talk to the store
    engine: Engine
    mutations: Mutations  # persist -> publish -> record: every change to what is served
    sync: StoreSync  # publishes other writers' changes through ``mutations``
    batcher: MicroBatcher
    requests: RequestPath  # decode_request -> batch -> encode_response
    views: Views
    jobs: JobDesk  # training jobs: checked here, queued in the store, run by `mpt worker`


def batch_tokens(settings: Settings, device: torch.device) -> int:
    """The per-batch token budget: as set, else 1024 on a CPU (a small request waits at most ~0.3 s
    behind a chunk of a big one on 2 cores) and 65536 on a GPU (256 rows of ~256 tokens)."""
    if settings.max_batch_tokens is not None:
        return settings.max_batch_tokens
    return 65536 if device.type == "cuda" else 1024


def build_state(settings: Settings, metrics: Metrics) -> ServiceState:
    """Load the backbone, open the store and wire every component. Blocking (run it in a thread);
    nothing runs yet: the lifecycle publishes the store, warms up and starts the batcher."""
    backbone = load_backbone(settings.model, settings.device, settings.dtype, settings.attn_implementation)
    s = settings.model_copy(update={"max_batch_tokens": batch_tokens(settings, backbone.device)})
    table = PromptTable(backbone.d_model, backbone.device, max_rank=s.max_rank)
    engine = Engine(backbone, table, s)
    store = open_store(s.store)  # sqlite:///PATH, a directory, ...; created (and migrated) when missing
    work = StoreWork()
    mutations = Mutations(store, table, backbone.fingerprint, metrics, work)
    batcher = MicroBatcher(
        engine.run,
        s.max_batch,
        s.max_wait_ms / 1000,
        s.max_queue,
        metrics.observe_batch,
        max_task_queue=s.max_task_queue,
        max_batch_tokens=s.max_batch_tokens,
        batch_sizes=engine.batch_sizes,  # known after warm-up; read when a batch closes
    )
    return ServiceState(
        store=store,
        work=work,
        engine=engine,
        mutations=mutations,
        sync=StoreSync(store, mutations, metrics),
        batcher=batcher,
        requests=RequestPath(s, engine, table, batcher, metrics),
        views=Views(table),
        jobs=JobDesk(store, s, backbone.fingerprint, engine.tokenize),
    )
