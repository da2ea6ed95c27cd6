"""The studio's web process: serves the page and relays its WebSocket to the engine process.

Run as ``python -m host.studio.web`` by the engine process (``host.studio.run``), which writes
one JSON line on its stdin: ``{"link": <AF_UNIX address>, "authkey": <hex>, "token": <token>,
"port": <port or 0>}``. It connects back to the engine over that ``multiprocessing.connection``
link, binds 127.0.0.1:port (0: any free port), tells the engine ``("ready", port)`` and serves
until the link closes.

Safety (every HTTP request and the WebSocket): the token (``?token=`` or the cookie set with the
page), a Host header naming 127.0.0.1/localhost at our port, and no foreign Origin; else 403
(a refused WebSocket gets 403 before the upgrade). See PROTOCOL.md.

Link messages: to the engine ``("hello", client)``, ``("msg", client, dict)``,
``("bye", client)``; from the engine ``(client or None for all, dict)``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import secrets
import socket
import sys
import threading
from multiprocessing.connection import Client, Connection
from typing import Any

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_MESSAGE = 1 << 20    # bytes of one page message
MAX_BACKLOG = 64         # a slow page skips meters while this many messages wait for it
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json",
                 ".ico": "image/x-icon", ".woff2": "font/woff2"}


def cookie_name(port: int) -> str:
    return f"mixstyle_studio_{port}"


class Hub:
    """The link to the engine and the connected pages (all on the event loop's thread, except
    the link reader thread, which hands every message over with ``call_soon_threadsafe``)."""

    def __init__(self, link: Connection) -> None:
        self.link = link
        self.clients: dict[int, asyncio.Queue[str]] = {}
        # pages that got their hello: only those get what the engine sends to all (a page that
        # connects while another is open must not see meters before its hello; PROTOCOL.md)
        self.greeted: set[int] = set()
        self._next = 1
        self._send_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_close: Any = None

    def send(self, item: tuple[Any, ...]) -> None:
        with self._send_lock:
            try:
                self.link.send(item)
            except (OSError, EOFError, BrokenPipeError):
                pass  # the engine is going away; the reader thread ends the server

    def register(self) -> tuple[int, asyncio.Queue[str]]:
        cid = self._next
        self._next += 1
        q: asyncio.Queue[str] = asyncio.Queue()
        self.clients[cid] = q
        self.send(("hello", cid))
        return cid, q

    def unregister(self, cid: int) -> None:
        self.clients.pop(cid, None)
        self.greeted.discard(cid)
        self.send(("bye", cid))

    def _dispatch(self, to: Any, msg: Any) -> None:
        try:
            text = json.dumps(msg, separators=(",", ":"), allow_nan=False)
        except ValueError:  # a NaN/inf slipped in (a plugin's parameter, say): send null
            text = json.dumps(_finite(msg), separators=(",", ":"), allow_nan=False)
        kind = msg.get("type") if isinstance(msg, dict) else None
        meters = kind == "meters"
        if to is None:  # to all: the pages greeted already (what came before is in the hello)
            queues = [q for cid, q in self.clients.items() if cid in self.greeted]
        elif to in self.clients:
            if kind == "hello":
                self.greeted.add(to)
            queues = [self.clients[to]]
        else:
            queues = []
        for q in queues:
            if meters and q.qsize() >= MAX_BACKLOG:
                continue
            q.put_nowait(text)

    def read_link(self) -> None:
        """Thread: engine -> pages, until the link closes."""
        assert self.loop is not None
        while True:
            try:
                item = self.link.recv()
            except (EOFError, OSError):
                break
            if isinstance(item, tuple) and len(item) == 2:
                self.loop.call_soon_threadsafe(self._dispatch, item[0], item[1])
        if self.on_close is not None:
            self.loop.call_soon_threadsafe(self.on_close)


def build_app(hub: Hub, token: str, port: int) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    hosts = {f"127.0.0.1:{port}", f"localhost:{port}"}
    origins = {f"http://{h}" for h in hosts}
    cookie = cookie_name(port)

    def refusal(conn: HTTPConnection) -> str | None:
        given = conn.query_params.get("token") or conn.cookies.get(cookie) or ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            return "missing or wrong token"
        if conn.headers.get("host", "") not in hosts:
            return "foreign Host header"
        origin = conn.headers.get("origin")
        if origin is not None and origin not in origins:
            return "foreign Origin"
        return None

    class Guard:
        """Every request and WebSocket passes the token/Host/Origin checks, or gets 403."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                why = refusal(HTTPConnection(scope))
                if why is not None:
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 1008, "reason": why})
                    else:
                        await PlainTextResponse(f"403 forbidden: {why}",
                                                status_code=403)(scope, receive, send)
                    return
            await self.app(scope, receive, send)

    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
               "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}

    async def index(request: Request) -> Response:
        r = FileResponse(os.path.join(STATIC, "index.html"), headers=headers,
                         media_type=CONTENT_TYPES[".html"])
        r.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        return r

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        path = os.path.realpath(os.path.join(STATIC, name))
        if not path.startswith(os.path.realpath(STATIC) + os.sep) or not os.path.isfile(path):
            return PlainTextResponse("404 not found", status_code=404)
        ext = os.path.splitext(path)[1].lower()
        return FileResponse(path, headers=headers,
                            media_type=CONTENT_TYPES.get(ext, "application/octet-stream"))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        cid, q = hub.register()

        async def pump() -> None:
            while True:
                await websocket.send_text(await q.get())

        sender = asyncio.create_task(pump())
        try:
            while True:
                event = await websocket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                if text is None:
                    q.put_nowait(_error_text("send JSON text frames, not binary"))
                    continue
                if len(text) > MAX_MESSAGE:
                    q.put_nowait(_error_text(f"message too long ({len(text)} bytes; "
                                             f"allowed {MAX_MESSAGE})"))
                    continue
                try:
                    msg = json.loads(text)
                except ValueError as e:
                    q.put_nowait(_error_text(f"not valid JSON ({e})"))
                    continue
                hub.send(("msg", cid, msg))
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            hub.unregister(cid)

    app = Starlette(routes=[Route("/", index), Route("/static/{name:path}", static),
                            WebSocketRoute("/ws", ws)])
    return Guard(app)


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float replaced by None (JSON has no NaN/inf)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _error_text(text: str) -> str:
    return json.dumps({"type": "message", "level": "error", "text": text})


def serve(link_address: str, authkey: bytes, token: str, port: int = 0) -> None:
    import uvicorn
    link = Client(link_address, family="AF_UNIX", authkey=authkey)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        link.send(("failed", f"cannot listen on 127.0.0.1:{port}: {e.strerror}"))
        link.close()
        raise SystemExit(2) from None
    sock.listen(128)  # connections wait in the backlog until the server runs
    port = sock.getsockname()[1]
    hub = Hub(link)
    config = uvicorn.Config(build_app(hub, token, port), log_level="warning", lifespan="off",
                            ws_max_size=MAX_MESSAGE, access_log=False,
                            timeout_graceful_shutdown=2)  # pages left open never hold the exit
    server = uvicorn.Server(config)

    def closed() -> None:
        server.should_exit = True

    async def main() -> None:
        hub.loop = asyncio.get_running_loop()
        hub.on_close = closed
        threading.Thread(target=hub.read_link, name="studio-link", daemon=True).start()
        hub.send(("ready", port))
        await server.serve(sockets=[sock])

    asyncio.run(main())


def main() -> int:
    line = sys.stdin.readline()
    try:
        cfg = json.loads(line)
        serve(cfg["link"], bytes.fromhex(cfg["authkey"]), cfg["token"], int(cfg.get("port", 0)))
    except (ValueError, KeyError) as e:
        print(f"host.studio.web: bad start line on stdin ({e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
