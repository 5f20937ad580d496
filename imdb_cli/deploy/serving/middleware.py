"""ASGI middleware of `imdb serve`: request bodies read within a limit, and the API key.

Both answer before any route runs, in the same ``{"error": "one line"}`` form as the routes.
"""

from __future__ import annotations

import hmac
import json

OPEN_ROUTES = frozenset({"/health"})
"""What answers without the API key: a load balancer's or Kubernetes' probe carries none."""


async def send_error(send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    head += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class JsonBody:
    """A POST body is read whole, up to ``max_request_bytes`` (413 beyond, before any of it is parsed),
    and taken as JSON whatever its Content-Type says: ``curl -d`` sends
    ``application/x-www-form-urlencoded``, and JSON is the only body the server takes."""

    def __init__(self, app, max_request_bytes: int) -> None:
        self.app, self.limit = app, max_request_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            message = f"the body is {int(declared)} bytes: at most {self.limit} (--max_request_bytes)"
            await send_error(send, 413, message)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await send_error(send, 413, f"the body is over {self.limit} bytes (--max_request_bytes)")
                return
            if not message.get("more_body", False):
                break
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope["headers"].append((b"content-type", b"application/json"))
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class ApiKey:
    """Every route but :data:`OPEN_ROUTES` needs ``Authorization: Bearer <key>``: 401 otherwise. The
    key is compared in constant time, so that the time of a refusal does not tell how much of it matched."""

    def __init__(self, app, key: str) -> None:
        self.app, self.expected = app, f"bearer {key}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_ROUTES:
            given = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, key = given.partition(b" ")
            if not hmac.compare_digest(scheme.lower() + b" " + key.strip(), self.expected):
                reason = "a wrong API key" if given else "no API key"
                message = f"{reason}: send the header Authorization: Bearer <the key the server was given>"
                await send_error(send, 401, message, {"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)
