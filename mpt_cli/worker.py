"""``mpt worker``: a training worker. It claims the training jobs that ``POST /tasks/{name}/train``
queues in the store and runs each through the same code as ``mpt train adapt`` (training.worker).

Beside a server on the same CPUs it keeps out of serving's way: it lowers its own priority
(``--nice``), trains on few threads (``--threads``, 1 by default) and may sleep between steps
(``--yield-ms``). SIGTERM or Ctrl-C: the running job stops at its next step and goes back to the
queue (no attempt spent), then the worker exits 0. ``--model`` and ``--store`` default to
``MPT_MODEL`` and ``MPT_STORE``, as the server's do, so a container needs only the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from training.config import WorkerConfig

from .common import DTYPES, STORE_HELP, open_store
from .flags import add_config_flags, config_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "worker",
        help="run training jobs queued through the API (POST /tasks/NAME/train)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model, store = os.environ.get("MPT_MODEL"), os.environ.get("MPT_STORE")
    p.add_argument("--model", default=model, required=model is None, help="backbone, as the server's (MPT_MODEL)")
    p.add_argument("--store", default=store, required=store is None, help=STORE_HELP + " (MPT_STORE)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="backbone dtype (default: float32)")
    add_config_flags(p, WorkerConfig, "worker")
    p.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    cfg = config_from_args(WorkerConfig, args)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin on serving's cores
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.getpriority(os.PRIO_PROCESS, 0) < cfg.nice:
        os.setpriority(os.PRIO_PROCESS, 0, cfg.nice)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    log = logging.getLogger("mpt.worker")

    import torch

    from mpt_core.backbone import load_backbone
    from prompts_store.backends.postgres_store import redact
    from training.worker import Worker

    torch.set_num_threads(cfg.threads)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stop.is_set():
            log.info(
                "%s: stopping after the running job's next step (it goes back to the queue)", signal.strsignal(signum)
            )
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    store = open_store(args.store)
    try:
        store.list_jobs(limit=1)  # a store without jobs (a directory) is refused here, not at every poll
        backbone = load_backbone(args.model, args.device, args.dtype)
        worker = Worker(backbone, store, cfg, stop)
        log.info(
            "worker %s: %s on %s, store %s, %d thread(s), nice %d; waiting for jobs",
            worker.id,
            args.model,
            backbone.device,
            redact(args.store),
            cfg.threads,
            os.getpriority(os.PRIO_PROCESS, 0),
        )
        done = worker.run()
        log.info("worker %s: stopped after %d job(s)", worker.id, done)
    finally:
        store.close()
    return 0
