"""Inference: the request path from a decoded request to its final answers.

request_path    the stages of /predict: rows, work budget, submit, answer
tokenize_stage  tokenizing off the event loop, many requests per call
batcher         the micro-batcher: fair mixed-task batches, deadlines, drain
rows            what travels through the batcher (no model library)
engine          ONE frozen backbone reading the prompt table: compose, encode, decode or score
fast/           the fast T5 forward the engine runs by default
"""
