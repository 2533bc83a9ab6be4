"""``mpt peft export|import``: PEFT ``MULTITASK_PROMPT_TUNING`` adapters to and from the store."""

from __future__ import annotations

import argparse

from .common import add_model_args, add_store_arg, load_backbone, open_store


def register(sub) -> None:
    actions = sub.add_parser("peft", help="PEFT MULTITASK_PROMPT_TUNING interop").add_subparsers(
        dest="action", required=True
    )
    ex = actions.add_parser("export", help="write a PEFT adapter from a family and its tasks")
    add_store_arg(ex)
    ex.add_argument("--family", required=True, help="the family to export")
    ex.add_argument("--task", action="append", help="tasks to export, in PEFT task_id order (default: all)")
    ex.add_argument("--out", required=True, help="adapter directory to write")
    ex.add_argument("--base-model", default=None, help="base_model_name_or_path (default: the family's model id)")
    ex.set_defaults(func=run_export)

    im = actions.add_parser("import", help="read a PEFT adapter into the store")
    add_model_args(im)
    im.add_argument("--adapter", required=True, help="directory with adapter_config.json + adapter_model.safetensors")
    add_store_arg(im)
    im.add_argument("--family", required=True, help="the family to write")
    im.add_argument("--task-names", help="comma-separated names for task_ids 0..T-1")
    im.add_argument("--overwrite", action="store_true", help="replace families and tasks already in the store")
    im.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> dict:
    from training.peft_interop import export_peft

    return export_peft(open_store(args.store, create=False), args.family, args.task, args.out, args.base_model)


def run_import(args: argparse.Namespace) -> dict:
    from training.peft_interop import import_peft

    names = args.task_names.split(",") if args.task_names else None
    backbone = load_backbone(args)
    return import_peft(open_store(args.store), args.adapter, args.family, backbone.fingerprint, names, args.overwrite)
