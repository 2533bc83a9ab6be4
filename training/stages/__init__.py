"""The training stages of the method, each only what differs from the one skeleton (``stage``).

stage     the skeleton: build parameters -> loop -> keep the best -> save -> report
teachers  stage 1: vanilla prompt tuning, one prompt per source task
distill   stage 2: distillation into one shared ``P*`` and per-task factors
adapt     stage 3: target adaptation from ``P* ∘ (u vᵀ)``
spot      the SPoT-style baseline: one prompt on the source mixture
"""
