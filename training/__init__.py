"""mpt-serve training: teachers, MPT source distillation, target adaptation, baselines, CLI."""
