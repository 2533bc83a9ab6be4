"""The HTTP edge: what turns bytes on a socket into calls of the runtime, and answers back.

app            the FastAPI application and its assembly
predict_asgi   ``POST /predict`` as a lean ASGI endpoint (the hot path)
predict_body,  the bodies of /predict and of the train route, read by the service itself
train_body
uploads        decoding uploaded tasks and families (JSON or safetensors, never pickle)
routes/        the FastAPI routes: predict, tasks, families, jobs, health and metrics
middleware     pure ASGI middleware: body limit, metrics, in-flight counting
replica        the ``x-mpt-replica`` header
errors         the one error shape and the mapping of exceptions onto it
schemas        request and response bodies
openapi        what the OpenAPI document says about errors, names and credentials
deps           what a route needs, as FastAPI dependencies
http_protocol  the HTTP/1.1 protocol uvicorn runs, with the head-size limits
"""
