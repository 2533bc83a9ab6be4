"""mpt-serve training: teachers, MPT source distillation, target adaptation, baselines (the `mpt` CLI is mpt_cli)."""
