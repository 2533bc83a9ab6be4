"""Benchmarks of training jobs through the API.

setup               what they share: the demo served from a fresh copy of its store, the example body
train_job           a job from queued to served, timed and scored (CPU)
train_job_gpu       the same on a GPU, or the CPU, through the store and a worker
train_beside_serve  does a training job starve serving?
"""
