"""The control surface's server: the page and its live-update channel, on loopback only.

One library does it: ``websockets`` (no dependencies of its own). Its handshake hook
serves the page's three files as plain HTTP GETs; everything the page does after
that (meters, knobs, bypass, rig switches, recording, saving presets) goes over one
WebSocket as JSON messages. There are no other endpoints, so there is nothing to
POST to.

Security: the server binds 127.0.0.1; every request, the WebSocket's included, must
carry the session's token (a random 192-bit value in the URL the command prints);
a request whose ``Host`` is not this server's own address, or whose ``Origin`` is
another site's, is refused (DNS rebinding, cross-site requests from other pages in
the same browser). The page names presets and models only as the entries of the
``--library`` listing the server made itself; a name it sends is looked up in that
listing, never opened as a path. Recordings and saved presets get names, not paths,
checked against :data:`SAFE_NAME`, in folders the command line chose. The server
stops with the session.

Messages from the page: ``{"type": T, "id": N, ...}`` with T one of ``param``
(``index``, ``name``, ``value``), ``bypass`` (``index``, ``bypassed``), ``gain``
(``which``: input or output, ``db``), ``switch`` (``item``: a library name),
``record`` (``action``: start with ``name`` and ``overwrite``, or stop), ``save``
(``name``, ``overwrite``), ``state``. Answers: ``ok``, ``error`` (``message``),
``exists`` (the file is there: ask, then send again with ``overwrite``); to every
page: ``state`` after any change and every second, ``meters`` :data:`METER_HZ` times
a second (each connection reads its own :class:`~ampnet.live.control.MeterReader`).
"""

import asyncio
import http
import json
import re
import secrets
import sys
import threading
import webbrowser
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed

from ampnet.errors import AmpnetError

METER_HZ = 20  # meter frames a second to each page
STATE_EVERY_S = 1.0
MAX_MESSAGE_BYTES = 16 * 1024
MAX_LIBRARY_ENTRIES = 1000
LIBRARY_SUFFIXES = {".toml": "preset", ".json": "model", ".nam": "model", ".aidax": "model"}
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}")
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/app.css": ("app.css", "text/css; charset=utf-8")}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Content-Security-Policy": "default-src 'self'; connect-src 'self'; "
                                      "img-src 'self' data:; frame-ancestors 'none'"}


class ControlServer:
    """The browser control surface of a :class:`~ampnet.live.session.LiveSession`: a
    controller for :meth:`LiveSession.run` (``start(session)``, ``lines()``, ``stop()``).
    ``port`` 0 takes a free one; ``library``: the folder of presets and models to
    switch between (and where presets are saved; else ``save_dir``); ``record_dir``:
    where recordings go."""

    def __init__(self, port=0, library=None, record_dir=".", save_dir=".", open_browser=True):
        self.port, self.open_browser = port, open_browser
        self.library = Path(library).resolve() if library else None
        if self.library is not None and not self.library.is_dir():
            raise AmpnetError(f"--library {library}: not a folder")
        self.record_dir = Path(record_dir).resolve()
        self.save_dir = self.library or Path(save_dir).resolve()
        self.token = secrets.token_urlsafe(24)
        self.session = None
        self.clients = set()
        self.ready = threading.Event()
        self.error = None
        self.thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    # --- controller interface ----------------------------------------------------------

    def start(self, session):
        self.session = session
        self.pages = {path: resources.files("ampnet.live").joinpath("page", name).read_text(
            encoding="utf-8") for path, (name, _) in PAGE_FILES.items()}
        self.thread = threading.Thread(target=self._serve, daemon=True, name="ampnet-ui")
        self.thread.start()
        self.ready.wait(10)
        if self.error or not self.ready.is_set():
            raise AmpnetError(f"the control surface could not start on 127.0.0.1:{self.port} "
                              f"({self.error or 'timed out'}); choose another --ui-port")
        if self.open_browser:
            threading.Thread(target=webbrowser.open, args=(self.url,), daemon=True).start()

    def lines(self):
        return [f"control surface: {self.url}"
                + ("" if self.open_browser else "  (open it in a browser on this machine)")]

    def stop(self):
        if self.thread is None or not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(5)

    # --- the server thread --------------------------------------------------------------

    def _serve(self):
        try:
            asyncio.run(self._main())
        except Exception as err:  # reported by start(); the stream goes on without a page
            self.error = err
            self.ready.set()

    async def _main(self):
        from websockets.asyncio.server import serve

        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        async with serve(self._connection, "127.0.0.1", self.port,
                         process_request=self._check_request, max_size=MAX_MESSAGE_BYTES,
                         server_header=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stopping.wait()
            for connection in list(self.clients):
                await connection.close(1001, "the live session stopped")

    def _check_request(self, connection, request):
        """Every request: Host, Origin and token, then the page's files or the WebSocket."""
        own = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        hosts = request.headers.get_all("Host")
        host = hosts[0] if len(hosts) == 1 else repr(hosts)
        if host not in own:
            return _response(http.HTTPStatus.FORBIDDEN, f"refused: Host {host!r} is not this "
                             "server (ampnet's control surface answers on 127.0.0.1 only)")
        origins = request.headers.get_all("Origin")
        origin = origins[0] if len(origins) == 1 else None if not origins else repr(origins)
        if origin is not None and origin != f"http://{host}":
            return _response(http.HTTPStatus.FORBIDDEN,
                             f"refused: a page from {origin!r} may not use this control surface")
        url = urlsplit(request.path)
        token = parse_qs(url.query).get("token", [""])[0]
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return _response(http.HTTPStatus.FORBIDDEN, "refused: this needs the session's "
                             "token: open the URL 'ampnet live --ui' printed")
        if url.path == "/ws":
            return None  # on to the WebSocket handshake
        if url.path not in PAGE_FILES:
            return _response(http.HTTPStatus.NOT_FOUND, "not found")
        body = self.pages[url.path].replace("{{TOKEN}}", self.token)
        return _response(http.HTTPStatus.OK, body, PAGE_FILES[url.path][1])

    async def _connection(self, connection):
        self.clients.add(connection)
        meters = self.session.meter_reader()
        sender = asyncio.create_task(self._push(connection, meters))
        try:
            await connection.send(json.dumps(self._state()))
            async for text in connection:
                answer = await self._handle(text)
                await connection.send(json.dumps(answer))
                if answer["type"] == "ok":
                    await self._broadcast(self._state())
        except ConnectionClosed:  # the page went away
            pass
        except Exception as err:  # a bug: say so on the terminal, the stream goes on
            print(f"control surface: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        finally:
            sender.cancel()
            self.clients.discard(connection)

    async def _push(self, connection, meters):
        """Meter frames at :data:`METER_HZ`, the state every :data:`STATE_EVERY_S`."""
        ticks = 0
        period = 1.0 / METER_HZ
        while True:
            await asyncio.sleep(period)
            ticks += 1
            await connection.send(json.dumps({"type": "meters", **meters.read()}))
            if ticks % round(STATE_EVERY_S * METER_HZ) == 0:
                await connection.send(json.dumps(self._state()))

    async def _broadcast(self, message):
        text = json.dumps(message)
        for connection in list(self.clients):
            try:
                await connection.send(text)
            except Exception:
                self.clients.discard(connection)

    def _state(self):
        return {"type": "state", **self.session.state(), "library": self._library(),
                "library_folder": str(self.library) if self.library else None,
                "save_folder": str(self.save_dir), "record_folder": str(self.record_dir)}

    def _library(self):
        """``{name: kind}`` of the presets and models directly in ``--library``."""
        if self.library is None:
            return {}
        entries = {}
        for path in sorted(self.library.iterdir()):
            kind = LIBRARY_SUFFIXES.get(path.suffix.lower())
            if kind and path.is_file() and not path.name.startswith("."):
                entries[path.name] = kind
                if len(entries) >= MAX_LIBRARY_ENTRIES:
                    break
        return entries

    async def _handle(self, text):
        """One message from a page: the answer to send back."""
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("a message is a JSON object")
        except (ValueError, TypeError) as err:
            return {"type": "error", "id": None, "message": f"not a message: {err}"}
        ident = message.get("id")
        try:
            result = await asyncio.to_thread(self._act, message)
        except (AmpnetError, ValueError, TypeError, KeyError, IndexError) as err:
            return {"type": "error", "id": ident, "message": str(err)}
        if isinstance(result, dict) and result.get("type") == "exists":
            return {**result, "id": ident}
        return {"type": "ok", "id": ident, "message": result or ""}

    def _act(self, m):
        """Do what message ``m`` asks, in a worker thread (a rig switch builds and warms a
        chain: seconds, never on the audio thread nor the server's loop)."""
        session, kind = self.session, m.get("type")
        control = session.control
        if kind == "state":
            return None
        if kind == "param":
            index = _index(m, session)
            control.set_parameter(index, str(m["name"]), _number(m["value"]))
            return None
        if kind == "bypass":
            control.set_bypass(_index(m, session), bool(m["bypassed"]))
            return None
        if kind == "gain":
            control.set_gain(str(m["which"]), _number(m["db"]))
            return None
        if kind == "switch":
            return self._switch(str(m["item"]))
        if kind == "record":
            if m.get("action") == "stop":
                done = session.stop_recording()
                return f"recorded {done['frames']} frames to {done['path']}" if done else \
                    "not recording"
            path = self.record_dir / _file_name(m.get("name"), ".wav")
            if path.exists() and m.get("overwrite") is not True:
                return {"type": "exists", "what": "recording", "name": path.name}
            first = session.start_recording(path, overwrite=True)
            print(f"recording to {path} from output frame {first}", flush=True)
            return f"recording to {path.name}"
        if kind == "save":
            path = self.save_dir / _file_name(m.get("name"), ".toml")
            if path.exists() and m.get("overwrite") is not True:
                return {"type": "exists", "what": "preset", "name": path.name}
            session.save_preset(path, name=Path(path).stem, overwrite=True)
            print(f"saved preset {path}", flush=True)
            return f"saved {path.name}"
        raise ValueError(f"unknown message type {kind!r}")

    def _switch(self, item):
        from ampnet.host.preset import load_spec

        library = self._library()
        if item not in library:
            raise AmpnetError(f"{item!r} is not in the library"
                              + (f" ({self.library})" if self.library else
                                 " (start 'ampnet live' with --library DIR to switch rigs)"))
        spec = load_spec(self.library / item)
        frame = self.session.switch_rig(spec)
        recording = self.session.recorder
        at = "" if recording is None else f", recording frame {frame - recording.first_frame}"
        print(f"rig: {spec.name} (crossfade at output frame {frame}{at})", flush=True)
        return f"playing {spec.name}"


def _response(status, body, content_type="text/plain; charset=utf-8"):
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    data = body.encode("utf-8")
    headers = Headers({**HEADERS, "Content-Type": content_type, "Content-Length": str(len(data)),
                       "Connection": "close"})
    return Response(status.value, status.phrase, headers, data)


def _index(message, session):
    index = message["index"]
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(session.chain.processors):
        raise ValueError(f"no processor {index!r} in the chain")
    return index


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _file_name(name, suffix):
    """``name`` as a file name in a folder the command line chose: letters, digits,
    spaces, ``_ . -``; never a path."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or ".." in name:
        raise ValueError(f"{name!r}: a name is up to 80 letters, digits, spaces and _ . - "
                         "(no folders)")
    return name if name.lower().endswith(suffix) else name + suffix
