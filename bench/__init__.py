"""Benchmarks of mpt-serve: serving (``bench.serve_bench``) and the offline accuracy lab
(``bench.lab``, ``bench.accuracy``)."""

import os

# OpenMP threads that busy-wait make a CPU shared with other jobs up to 10x slower (measured here:
# 2 threads, default policy, one other busy process: 5.7 s/step; PASSIVE: 0.6 s/step). This has to
# be set before torch loads, hence here, before any lab module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
