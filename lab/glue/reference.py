"""The paper's numbers for MPT with T5-base (Wang et al., ICLR 2023), for comparison only.

``mpt``: MPT with single-target adaptation, 77.6K parameters per task (l·d + l + d with l = 100,
d = 768: our ``mpt train adapt --mode full``). ``mpt-mt``: multitask target adaptation, ~10.5K per
task on GLUE (our ``--mode group`` over a benchmark's tasks). Our ``--mode factors`` (l + d = 868
parameters per task) has no number in the paper.

The GLUE / SuperGLUE averages 85.6 / 74.1 (mpt) are the paper's. The per-dataset values were
transcribed from the paper's tables as reprinted in later work (DePT, Shi & Lipani, ICLR 2024,
and ULPT, whose Table 1 / Table 5 take them from DePT); their means reproduce the printed
averages, except mpt-mt SuperGLUE (the printed 76.1 vs 76.24 for the mean of the printed values).
Check them against the MPT paper before quoting them.
"""

from __future__ import annotations

SOURCE = (
    "Wang et al. 2023 (MPT), T5-base; per-dataset values via DePT (Shi & Lipani 2024) / "
    "ULPT reprints of the paper's tables"
)

REFERENCES: dict[str, dict] = {
    "mpt": {
        "label": "MPT (paper, T5-base, 77.6K params/task)",
        "datasets": {
            "mnli": 85.9,
            "qqp": 90.3,
            "qnli": 93.1,
            "sst2": 93.8,
            "stsb": 90.4,
            "mrpc": 89.1,
            "rte": 79.4,
            "cola": 62.4,
            "multirc": 74.8,
            "boolq": 79.6,
            "wic": 69.0,
            "wsc": 67.3,
            "cb": 79.8,
            "nq": 72.0,
            "hotpotqa": 75.8,
            "searchqa": 77.2,
            "newsqa": 63.7,
            "winogrande": 56.5,
            "yelp": 96.4,
            "scitail": 95.5,
            "paws": 93.5,
        },
        "averages": {"glue": 85.6, "superglue": 74.1, "mrqa": 72.2, "others": 85.5},
    },
    "mpt-mt": {
        "label": "MPT multitask target adaptation (paper, T5-base)",
        "datasets": {
            "mnli": 84.3,
            "qqp": 90.0,
            "qnli": 93.0,
            "sst2": 93.0,
            "stsb": 90.4,
            "mrpc": 89.2,
            "rte": 82.7,
            "cola": 63.5,
            "multirc": 74.8,
            "boolq": 79.6,
            "wic": 70.2,
            "wsc": 67.3,
            "cb": 89.3,
        },
        "averages": {"glue": 85.8, "superglue": 76.1},
    },
}


def get_reference(name: str) -> dict:
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}")
    return REFERENCES[name]
