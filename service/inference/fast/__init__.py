"""The serving engine's fast T5 forward: lean encoder, static-KV greedy loop, shared-prefix
candidate scoring, optional torch.compile / CUDA graphs over shape buckets.

    from service.inference.fast import FastOptions, FastT5
"""

from .model import Encoded, FastT5
from .options import FastOptions

__all__ = ["Encoded", "FastOptions", "FastT5"]
