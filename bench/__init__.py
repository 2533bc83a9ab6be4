"""Benchmarks of mpt-serve (not unit tests); their results go to ``bench/results/``.

    speed/          the engine against PEFT, side by side (``make bench-speed``, ``make bench-gpu``)
    scale           one server with 1 to 10^6 resident tasks (``make bench-scale``)
    scale_out       replicas on one store
    serve_bench     HTTP serving throughput and latency on a tiny T5 (``make bench-serve``)
    store_bench     the SQLite store at scale
    jobs/           training jobs through the API
    http_load       the closed-loop HTTP load generator they share
    tables/         the markdown table of every result, generated from its JSON (``python -m bench.tables``)

Every figure the docs quote comes from a JSON file of ``bench/results/``, never from a keyboard.
"""

import os

# OpenMP threads that busy-wait make a CPU shared with other jobs up to 10x slower: set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
