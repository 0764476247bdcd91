"""The control surface's server refuses what it must (``ampnet live --ui`` on JACK's dummy
driver, probed with plain HTTP and WebSocket clients). The page itself in a real browser:
tests/test_control_surface_browser.py."""

import http.client
import itertools
import json
import socket

import pytest

from tests import jack_server
from tests.surface import LiveUI, make_library

pytestmark = pytest.mark.skipif(not jack_server.available(), reason="jackd2 is not installed")
websockets_client = pytest.importorskip("websockets.sync.client")
IDS = itertools.count(1)


@pytest.fixture(scope="module")
def jack():
    server = jack_server.JackServer(blocksize=64).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(jack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("surface")
    library = make_library(folder / "library")
    (folder / "takes").mkdir()
    ui = LiveUI(jack, library / "rig.toml", "--library", str(library),
                "--record-dir", str(folder / "takes"))
    ui.folder, ui.library = folder, library
    yield ui
    ui.stop()


def get(live, path, headers=None, host=None):
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    connection.putrequest("GET", path, skip_host=True)
    connection.putheader("Host", host or f"127.0.0.1:{live.port}")
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read().decode()


def socket_to(live, token=None, origin=None):
    return websockets_client.connect(
        f"ws://127.0.0.1:{live.port}/ws?token={live.token if token is None else token}",
        origin=origin or f"http://127.0.0.1:{live.port}", open_timeout=10)


def handshake(live, host):
    """The status of a WebSocket opening handshake sent with ``host`` as its Host."""
    return get(live, f"/ws?token={live.token}", host=host, headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": f"http://{host}"})[0]


def ask(ws, message):
    """Send ``message`` with a fresh id; the answer to it (meter frames and states skipped)."""
    message = {**message, "id": next(IDS)}
    ws.send(json.dumps(message))
    return answer_to(ws, message["id"])


def answer_to(ws, ident):
    while True:
        answer = json.loads(ws.recv(timeout=30))
        if answer["type"] not in ("meters", "state") and answer.get("id") == ident:
            return answer


def test_the_page_needs_the_token(live):
    status, body = get(live, f"/?token={live.token}")
    assert status == 200 and "ampnet live" in body and live.token in body
    for path in ("/", "/?token=", "/?token=wrong" + live.token[6:], "/app.js"):
        status, body = get(live, path)
        assert status == 403 and "token" in body


def test_the_server_listens_on_loopback_only(live):
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    listening = [row[1] for row in rows if row[3] == "0A" and int(row[1].split(":")[1], 16) == live.port]
    assert listening == ["0100007F:%04X" % live.port]  # 127.0.0.1, nothing else
    with open("/proc/net/tcp6") as table:
        assert not any(int(line.split()[1].split(":")[1], 16) == live.port and line.split()[3] == "0A"
                       for line in table.readlines()[1:])


def test_another_host_name_is_refused_dns_rebinding(live):
    status, body = get(live, f"/?token={live.token}", host=f"attacker.example:{live.port}")
    assert status == 403 and "Host" in body
    assert handshake(live, f"attacker.example:{live.port}") == 403
    assert handshake(live, f"127.0.0.1:{live.port}") == 101  # the same handshake, own Host


def test_a_page_from_another_origin_is_refused(live):
    status, body = get(live, f"/?token={live.token}", headers={"Origin": "http://evil.example"})
    assert status == 403 and "evil.example" in body
    for origin in ("http://evil.example", f"http://127.0.0.1:{live.port + 1}", "null"):
        with pytest.raises(Exception, match="403"):
            socket_to(live, origin=origin)


def test_the_live_channel_needs_the_token(live):
    for token in ("", "x" * len(live.token)):
        with pytest.raises(Exception, match="403"):
            socket_to(live, token=token)
    with socket_to(live) as ws:  # the right one is let in and told the state
        state = json.loads(ws.recv(timeout=10))
        assert state["type"] == "state" and state["rig"] == "Test rig"
        assert set(state["library"]) == {"rig.toml", "other.toml", "plain.json", "knob-amp.json"}


def test_the_page_cannot_open_or_write_a_path(live):
    with socket_to(live) as ws:
        for item in ("../library/rig.toml", str(live.library / "rig.toml"), "/etc/passwd",
                     "notes.txt"):
            answer = ask(ws, {"type": "switch", "item": item})
            assert answer["type"] == "error" and "not in the library" in answer["message"]
        for kind, name in (("save", "../escape"), ("save", "/tmp/x"), ("record", "a/b"),
                           ("record", ".hidden"), ("save", "")):
            message = {"type": kind, "name": name, "action": "start"}
            answer = ask(ws, message)
            assert answer["type"] == "error" and "no folders" in answer["message"], answer
    assert not (live.folder / "escape.toml").exists() and not (live.library.parent / "escape.toml").exists()


def test_saving_over_a_file_asks_first(live):
    before = (live.library / "other.toml").read_text()
    with socket_to(live) as ws:
        answer = ask(ws, {"type": "save", "name": "other"})
        assert answer["type"] == "exists" and answer["name"] == "other.toml"
        assert (live.library / "other.toml").read_text() == before
        assert ask(ws, {"type": "save", "name": "mine"})["type"] == "ok"
    assert (live.library / "mine.toml").is_file()


def test_bad_messages_get_an_error_and_the_session_goes_on(live):
    with socket_to(live) as ws:
        ws.send("not json")
        assert answer_to(ws, None)["type"] == "error"
        for message in ({"type": "param", "index": 99, "name": "x", "value": 1},
                        {"type": "param", "index": 2, "name": "bass_db", "value": 1e9},
                        {"type": "param", "index": 2, "name": "bass_db", "value": "loud"},
                        {"type": "gain", "which": "input", "db": 100},
                        {"type": "launch"}):
            answer = ask(ws, message)
            assert answer["type"] == "error" and answer["message"], answer
        assert ask(ws, {"type": "state"})["type"] == "ok"
    assert live.process.poll() is None


def test_the_server_stops_with_the_session(jack, tmp_path):
    library = make_library(tmp_path / "library")
    ui = LiveUI(jack, library / "plain.json")
    assert get(ui, f"/?token={ui.token}")[0] == 200
    code, output, stderr = ui.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", ui.port), timeout=2)
