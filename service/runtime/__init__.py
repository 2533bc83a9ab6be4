"""The runtime: the objects a server process holds, and how they stay in step with the store.

state        the composition root: what one process holds and how it is wired
lifecycle    starting -> ready -> draining, or failed
mutations    every change to what is served: persist, publish, record
store_sync   applying the store's change feed, whoever wrote it
store_work   the threads the store work runs on
views        read views from one consistent state of the table
jobs         training jobs through the API: check, queue, describe, cancel
metrics      the Prometheus metrics of one app instance
ray_app,     the server as Ray Serve replicas, and its settings
ray_main,
ray_settings
"""
