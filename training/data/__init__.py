"""Task data and how it reaches a training step.

examples  text-to-text examples read from JSONL or CSV files, k-shot subsets
batching  tokenising rows of examples into padded tensors
sampler   the paper's multitask sampler and a plain single-task one
toy       small generated tasks for demos and tests
"""
