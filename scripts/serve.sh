#!/usr/bin/env bash
# `make serve`: serve the embedded demo on 127.0.0.1:8000 (flags pass through to `mpt serve`), with
# one `mpt worker` beside it that trains the jobs of POST /tasks/NAME/train (MPT_SERVE_WORKER=0: none).
# The backbone and store come from MPT_MODEL / MPT_STORE when set. Otherwise the committed demo
# bundle (demo/) is served from a SQLite store, build/demo-store.db, seeded once from the
# bundle's directory store with `mpt store copy`, so uploads never touch the repository; without
# a bundle, a tiny demo is built once with the training CLI (scripts/demo_pipeline.sh, about a
# minute) and cached in build/serve-demo.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
if [ -z "${MPT_MODEL:-}" ]; then
  if [ -d demo/backbone ]; then
    export MPT_MODEL=demo/backbone
    seed=demo/store
  else
    if [ ! -f build/serve-demo/.done ]; then
      echo "no demo bundle in demo/: building a tiny one with the training CLI (once)" >&2
      MPT="$venv/bin/mpt" scripts/demo_pipeline.sh build/serve-demo
      touch build/serve-demo/.done
    fi
    export MPT_MODEL=build/serve-demo/backbone
    seed=build/serve-demo/store
  fi
  if [ -z "${MPT_STORE:-}" ]; then
    db=build/demo-store.db
    export MPT_STORE="sqlite:///$db"
    # a rebuilt bundle (demo/bundle.json changed) re-seeds the store; the old one is kept aside
    stamp=$(cat "$seed/../bundle.json" 2>/dev/null | sha256sum | cut -c1-16)
    if [ -f "$db" ] && [ "$(cat build/demo-store.seed 2>/dev/null)" != "$stamp" ]; then
      old="build/demo-store.$(date +%Y%m%d-%H%M%S).db"
      echo "the demo bundle changed: re-seeding $db (previous store kept as $old)" >&2
      for suffix in "" -wal -shm; do
        if [ -f "$db$suffix" ]; then mv "$db$suffix" "$old$suffix"; fi
      done
    fi
    if [ ! -f "$db" ]; then  # copied aside first: an interrupted copy is never taken for a seeded store
      mkdir -p build
      rm -f "$db.part" "$db.part-wal" "$db.part-shm"
      "$venv/bin/python" -m mpt_cli store copy "$seed" "sqlite:///$db.part" --no-progress >/dev/null
      for suffix in -wal -shm ""; do
        if [ -f "$db.part$suffix" ]; then mv "$db.part$suffix" "$db$suffix"; fi
      done
      echo "$stamp" > build/demo-store.seed
    fi
  fi
fi
if [ "${MPT_SERVE_WORKER:-1}" = "0" ]; then
  exec "$venv/bin/python" -m service "$@"
fi
# One training worker beside the server, on the same store (MPT_SERVE_WORKER=0: none): it runs the
# jobs of POST /tasks/NAME/train at a lower CPU priority on one thread (mpt worker --help). It stops
# when the server exits; SIGTERM / Ctrl-C reach both (the server drains, the worker requeues its job).
"$venv/bin/python" -m mpt_cli worker --model "$MPT_MODEL" --store "$MPT_STORE" &
worker=$!
"$venv/bin/python" -m service "$@" &
server=$!
stop() { kill -TERM "$server" "$worker" 2>/dev/null || true; }
trap stop TERM INT
trap 'kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT
status=0
wait "$server" || status=$?
if kill -0 "$server" 2>/dev/null; then  # woken by a signal: wait for the drain to end
  wait "$server" || status=$?
fi
exit "$status"
