"""``python -m bench.speed``: the engine against PEFT, side by side in one process (see ``run``).

run          the benchmark: phases, deadline, JSON
setup        the random-weights T5 of a named shape and the workload
engine       the two compared sides, each producing final answers
model        the backbone saved and loaded as the server does
http_phase   the real server over HTTP against the engine alone
timing       interleaved timing of the compared cases
report       the record of a run: environment, JSON, markdown table
engine_host  the engine's host-side work per batch
"""
