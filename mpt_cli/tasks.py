"""``mpt tasks list|show|push|delete``: a running server's tasks, through the Python client (mpt_client).

The server is ``--url`` (default ``$MPT_URL``, else http://127.0.0.1:8000); uploads and deletes send
``--token`` (default ``$MPT_ADMIN_TOKEN``) as the admin bearer token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .common import STORE_HELP

DEFAULT_URL = "http://127.0.0.1:8000"


def register(sub) -> None:
    actions = sub.add_parser("tasks", help="list, show, push and delete a running server's tasks").add_subparsers(
        dest="action", required=True
    )

    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help)
        p.add_argument(
            "--url", default=os.environ.get("MPT_URL", DEFAULT_URL), help="the server (default: %(default)s)"
        )
        p.add_argument(
            "--token", default=os.environ.get("MPT_ADMIN_TOKEN"), help="admin token (default: $MPT_ADMIN_TOKEN)"
        )
        p.set_defaults(func=func)
        return p

    ls = add("list", "every task, one JSON object a line (follows the pages)", run_list)
    ls.add_argument("--family", help="only this family's tasks")
    ls.add_argument("--limit", type=int, help="stop after this many")

    show = add("show", "one task's description", run_show)
    show.add_argument("name")

    push = add("push", "upload a task from a local store (--from) or a safetensors file (--file)", run_push)
    source = push.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="store", help=f"read the task from this local store ({STORE_HELP})")
    source.add_argument("--file", type=Path, help="a safetensors file (tensors u, v; metadata family, name)")
    push.add_argument("--name", help="the task (with --from: which one to read; with --file: overrides the file's)")
    push.add_argument("--as", dest="as_name", help="upload under this name instead (with --from)")
    push.add_argument("--family", help="with --file: the family, when the file's metadata has none")
    push.add_argument("--replace", action="store_true", help="replace a task of that name (default: 409 if taken)")

    delete = add("delete", "delete a task", run_delete)
    delete.add_argument("name")


def _client(args: argparse.Namespace):
    from mpt_client import Client

    return Client(args.url, token=args.token)


def _calling(run):
    """Run ``run(client, args)``; a server or connection error is one line on stderr and status 2."""

    def handler(args: argparse.Namespace):
        try:
            from mpt_client import MptError
        except ImportError as e:
            print(f"mpt tasks: needs the client's httpx ({e}): pip install 'mpt-serve[client]'", file=sys.stderr)
            return 2

        try:
            with _client(args) as client:
                return run(client, args)
        except MptError as e:
            print(f"mpt tasks: error: {e}", file=sys.stderr)
            return 2

    return handler


@_calling
def run_list(client, args: argparse.Namespace) -> int:
    for n, task in enumerate(client.tasks(family=args.family)):
        if args.limit is not None and n >= args.limit:
            break
        print(json.dumps(task), flush=False)
    sys.stdout.flush()
    return 0


@_calling
def run_show(client, args: argparse.Namespace) -> dict:
    return client.get_task(args.name)


@_calling
def run_push(client, args: argparse.Namespace) -> dict:
    if args.store is not None:
        if not args.name:
            raise ValueError("push --from STORE needs --name (the task to read)")
        return client.push_task(args.store, args.name, as_name=args.as_name, replace=args.replace)
    if args.as_name:
        raise ValueError("--as goes with --from; with --file use --name")
    data = args.file.read_bytes()
    return client.upload_task_bytes(data, name=args.name, family=args.family, replace=args.replace)


@_calling
def run_delete(client, args: argparse.Namespace) -> dict:
    client.delete_task(args.name)
    return {"deleted": args.name}
