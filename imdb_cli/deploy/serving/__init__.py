"""`imdb serve`: a trained classifier behind HTTP, concurrent requests batched together.

- :mod:`.server` loads the model, checks the access settings and runs uvicorn until SIGTERM or Ctrl-C;
- :mod:`.app` is the FastAPI application: routes, limits, errors;
- :mod:`.schemas` the request and response bodies (pydantic), the two protocols;
- :mod:`.batching` the queue and the batches; :mod:`.middleware` the body limit and the API key;
  :mod:`.metrics` ``GET /metrics``.

Built on FastAPI, uvicorn and prometheus-client (the ``serve`` extra).
"""
