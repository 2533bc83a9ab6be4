"""The offline accuracy lab: a seeded synthetic world, text-to-text task families over it, a
small T5 pretrained on span corruption + the prefixed multitask mixture (so that soft prompts can
steer it, as they steer real T5), the promptability gate, and the paper's comparison protocol.

    world/     the synthetic world and its task families
    pretrain   the lab backbone (``make lab-backbone``);  bank: its pretraining data as tensors
    gate       is the backbone promptable? (``make lab-gate``);  probe: frozen-backbone accuracy
    protocol   the paper's protocol: sources -> teachers -> distillation -> target adaptation
    grid       every method x target x shots x seed;  report: its tables and plot
    accuracy   ``make bench-accuracy``: the comparison grid from the command line
    bundle     the embedded demo that ``make serve`` serves (``make demo-bundle``)
    glue/      the paper's setup on real GLUE / SuperGLUE data, for whoever has the datasets
"""

import os

# OpenMP threads that busy-wait make a CPU shared with other jobs up to 10x slower. This has to be
# set before torch loads, hence here, before any lab module imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
