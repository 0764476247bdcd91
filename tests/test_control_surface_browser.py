"""The control surface in a real browser: Debian's headless Chromium driven by Playwright,
against ``ampnet live --ui`` on the JACK dummy server with a known signal playing in.

One session plays a scripted signal while the page acts in its silences: a knob moved
from the keyboard and a bypass switch change the output as a render with those
settings would; the meters read the level of a known sine and hold a clip; a rig switch
under signal plays on and, after its crossfade, the recording made from the page
equals the new chain's render; "save as preset" round-trips. The page is also checked at
phone width, and its screenshot is the README's.

A page of another site in the same browser cannot drive the session, even knowing the
token (its Origin is refused).

CI runs these in a step of their own: ``pytest -m browser``.
"""

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ampnet.host.preset import load_spec
from tests import jack_server
from tests.signals import guitar_like
from tests.surface import RATE, LiveUI, make_library

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not jack_server.available(), reason="jackd2 is not installed")]
jack = pytest.importorskip("jack")
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect  # waits by the page's own DOM (its CSP forbids eval)
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "control-surface.png"

# The signal, in seconds: (name, start, length).
LEAD, A, GAP_AB, B, GAP_BC, C, CLIP, GAP_CD, D, TAIL = 0.5, 2.0, 2.0, 2.0, 1.0, 2.0, 0.1, 1.5, 4.0, 1.0
SWITCH_INTO_D = 1.5  # the rig switch, this far into D
SINE_DBFS = -12.0
BLOCK = 256


def script():
    """The signal and where its parts start (samples)."""
    at, parts, pieces = 0, {}, []
    for name, seconds, make in (
            ("lead", LEAD, None), ("a", A, lambda n: guitar_like(A, seed=8)),
            ("gap_ab", GAP_AB, None), ("b", B, lambda n: guitar_like(B, seed=9)),
            ("gap_bc", GAP_BC, None),
            ("c", C, lambda n: 10 ** (SINE_DBFS / 20) * np.sin(2 * np.pi * 1000 * np.arange(n) / RATE)),
            ("clip", CLIP, lambda n: np.sin(2 * np.pi * 1000 * np.arange(n) / RATE)),
            ("gap_cd", GAP_CD, None), ("d", D, lambda n: guitar_like(D, seed=10)),
            ("tail", TAIL, None)):
        n = round(seconds * RATE)
        parts[name] = at
        pieces.append(np.zeros(n) if make is None else make(n)[:n])
        at += n
    parts["end"] = at
    return np.concatenate(pieces).astype(np.float32), parts


def render(spec, x, start, stop, settle=True):
    """``spec``'s chain, fresh, on ``x[start:stop]``: after 4 s of silence (states settle as
    the live chain's did in a silence before ``start``), or not (a chain switched in
    starts from its initial state)."""
    lead = 4 * RATE if settle else 0
    chain = spec.build(RATE)
    return chain.process(np.concatenate([np.zeros(lead, np.float32), x[start:stop]]))[lead:]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server():
    # 256-frame periods (5.3 ms): Chromium shares the machine's two cores with JACK, the
    # harness and ampnet; the live tests hold ampnet to 64.
    srv = jack_server.JackServer(blocksize=BLOCK).start()
    yield srv
    srv.stop()


class Player:
    """A JACK client that plays ``signal`` into ampnet's input and records its output."""

    def __init__(self, server, signal):
        from tests.test_live import Harness

        self.harness = Harness(server, signal, signal.size / RATE + 1)

    def start(self):
        self.harness.wire()

    def wait_until(self, sample, timeout=30):
        deadline = time.monotonic() + timeout
        while self.harness.position < sample:
            assert time.monotonic() < deadline, "the JACK server stopped playing"
            time.sleep(0.005)

    @property
    def recording(self):
        return self.harness.recording[:self.harness.recorded]

    def close(self):
        self.harness.close()


def lag_of(recorded, expected, block=BLOCK):
    """The round trip (samples, up to 4 blocks) that makes ``recorded`` match ``expected``
    best, and the largest difference there."""
    n = expected.size
    errors = {lag: float(np.max(np.abs(recorded[lag:lag + n] - expected)))
              for lag in range(0, 4 * block + 1)}
    lag = min(errors, key=errors.get)
    return lag, errors[lag]


def play_scripted_session(server, browser, folder):
    """One run of the script (files in ``folder``); returns what the checks need."""
    x, at = script()
    library = make_library(folder / "library")
    takes = folder / "takes"
    takes.mkdir()
    ui = LiveUI(server, library / "rig.toml", "--blocksize", str(BLOCK), "--library", str(library), "--record-dir", str(takes))
    player = Player(server, x)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    seen = {"dialogs": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.accept()
                                  if seen.get("accept") else d.dismiss()))
    try:
        page.goto(ui.url)
        page.get_by_test_id("processor-3").wait_for()
        expect(page.get_by_test_id("connection")).to_have_text("connected")
        player.start()

        # In the silence after A: the model's knob to its top from the keyboard (End on
        # its slider), the EQ bypassed with the space bar on its switch.
        player.wait_until(at["gap_ab"] + RATE // 4)
        knob = page.get_by_test_id("param-1-knob0")
        knob.focus()
        page.keyboard.press("End")
        page.get_by_test_id("bypass-2").focus()
        page.keyboard.press("Space")
        expect(page.get_by_test_id("bypass-2")).to_have_attribute("aria-pressed", "true")
        seen["knob_value"] = float(page.get_by_test_id("value-1-knob0").input_value())

        # Save the chain as it is now; the second save of that name asks first (declined).
        page.get_by_test_id("preset-name").fill("after b")
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("message")).to_contain_text("saved")
        saved_text = (library / "after b.toml").read_text()
        page.get_by_test_id("save").click()
        expect(page.get_by_test_id("message")).to_contain_text("kept it")
        seen["kept"] = (library / "after b.toml").read_text() == saved_text
        assert player.harness.position < at["b"], "the page's changes ran into B: too slow"

        # During C (a sine at SINE_DBFS), the meters.
        player.wait_until(at["c"] + RATE // 2)
        readings = []
        for _ in range(10):
            readings.append([float(page.get_by_test_id(t).get_attribute(f"data-{k}"))
                             for t in ("meter-in", "meter-out") for k in ("peak", "rms")])
            time.sleep(0.08)
        seen["meters_c"] = np.median(readings, axis=0)
        page.screenshot(path=str(SCREENSHOT))  # the README's: the first rig, a sine playing
        player.wait_until(at["gap_cd"] + RATE // 4)
        clip = page.get_by_test_id("meter-in").locator(".clip")
        seen["clip_held"] = clip.get_attribute("aria-pressed") == "true"
        seen["meter_silence"] = float(page.get_by_test_id("meter-in").get_attribute("data-peak"))
        clip.click()
        seen["clip_cleared"] = clip.get_attribute("aria-pressed") == "false"

        # Record from the page; switch rigs under signal in D; stop after D.
        page.get_by_test_id("record-name").fill("switch take")
        page.get_by_test_id("record").click()
        expect(page.get_by_test_id("record")).to_have_text("Stop")
        player.wait_until(at["d"] + round(SWITCH_INTO_D * RATE))
        page.get_by_test_id("library").select_option("other.toml")
        page.get_by_test_id("switch").click()
        expect(page.get_by_test_id("rig")).to_have_text("Other rig")
        player.wait_until(at["end"])
        page.get_by_test_id("record").click()
        expect(page.get_by_test_id("message")).to_contain_text("recorded")
        seen["xruns_on_page"] = int(page.get_by_test_id("xruns").inner_text())
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        seen["phone_overflow"] = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        seen["too_wide"] = page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => e.scrollWidth > e.clientWidth"
            " && getComputedStyle(e).overflowX === 'visible').map(e => e.outerHTML.slice(0, 120))")
        page.screenshot(path=str(folder / "phone.png"), full_page=True)
        seen["switch_line"] = ui.wait_for(r"rig: Other rig \(crossfade at output frame \d+, "
                                          r"recording frame \d+\)")
    finally:
        page.close()
        code, output, stderr = ui.stop()
        player.close()
    assert code == 0 and "Traceback" not in stderr, stderr
    return x, at, library, takes, player.recording, output, seen


def test_the_page_drives_the_live_session(server, browser, tmp_path):
    """The whole script, played again (up to 3 runs) when xruns of a stalled machine
    spoiled it, as the live tests do."""
    for run in range(1, 4):
        folder = tmp_path / f"run{run}"
        x, at, library, takes, recorded, output, seen = play_scripted_session(server, browser, folder)
        summary = re.search(r"(\d+) xruns \((\d+) callbacks longer", output)
        assert summary, output
        xruns, late = int(summary.group(1)), int(summary.group(2))
        spec_a = load_spec(library / "rig.toml")
        spec_b = load_spec(library / "rig.toml", [f"knob0={seen['knob_value']}"])
        spec_b.bypassed.add(2)
        lag, error_a = lag_of(recorded, render(spec_a, x, 0, at["gap_ab"]))
        # B, played after the changes settled in the silence before it (the render's
        # chain settles in silence from the start of that gap).
        expected_b = render(spec_b, x, at["gap_ab"], at["gap_bc"])[at["b"] - at["gap_ab"]:]
        error_b = float(np.max(np.abs(recorded[at["b"] + lag:at["gap_bc"] + lag] - expected_b)))
        take, _ = sf.read(str(takes / "switch take.wav"), dtype="float32")
        # Where the take sits in the harness's recording (the same samples, bit for bit),
        # found by 4096 of its loudest samples.
        k = int(np.clip(np.argmax(np.abs(take)) - 2048, 0, take.size - 4096))
        probe = take[k:k + 4096]
        starts = [int(i) - k for i in np.flatnonzero(recorded == probe[0])
                  if i >= k and np.array_equal(recorded[i:i + probe.size], probe)]
        assert len(starts) == 1, "the page's recording is not what the harness heard"
        first = starts[0] - lag  # the signal sample the take's first frame processed
        frame = int(re.search(r"recording frame (\d+)", seen["switch_line"]).group(1))
        fade = round(0.030 * RATE)
        new_rig = render(load_spec(library / "other.toml"), x, first + frame, at["end"], settle=False)
        after = take[frame + fade:frame + fade + new_rig.size - fade]
        error_switch = float(np.max(np.abs(after - new_rig[fade:fade + after.size])))
        old_rig = render(spec_b, x, at["gap_ab"], first + frame)
        error_before = float(np.max(np.abs(take[:frame] - old_rig[first - at["gap_ab"]:])))
        spoiled = max(error_a, error_b, error_switch, error_before) >= 1e-4 or late > 0
        if not (spoiled and xruns > 0):
            break
    assert max(error_a, error_b) < 1e-4, (error_a, error_b, f"{xruns} xruns, run {run}")
    assert seen["knob_value"] == 1.0
    # The rig switch: the sound never stopped, the new rig plays as its render after the
    # crossfade, the old as its own before, and no callback ran long (no xrun of ampnet's).
    assert error_before < 1e-4 and error_switch < 1e-4, (error_before, error_switch)
    assert late == 0, output
    window = RATE // 100
    d_take = take[at["d"] - first:at["tail"] - first]
    rms = np.sqrt(np.mean(d_take[:d_take.size // window * window].reshape(-1, window) ** 2, axis=1))
    assert rms.min() > 1e-3  # no 10 ms of silence anywhere in D
    # Meters: the sine's peak and RMS on the input meter, the recorded level on the output's.
    peak_in, rms_in, peak_out, rms_out = seen["meters_c"]
    assert abs(peak_in - SINE_DBFS) < 0.1 and abs(rms_in - (SINE_DBFS - 3.01)) < 0.1
    c_out = recorded[at["c"] + lag + RATE // 4:at["clip"] + lag]
    assert abs(peak_out - 20 * np.log10(np.max(np.abs(c_out)))) < 1.0
    assert seen["clip_held"] and seen["clip_cleared"] and seen["meter_silence"] < -100
    # Save as preset: the file reads back to the chain that played B, and a second save
    # of the name asked first and kept the file.
    saved = load_spec(library / "after b.toml")
    assert [p.values for p in saved.processors] == [p.values for p in spec_b.processors]
    assert saved.bypassed == {2}
    np.testing.assert_array_equal(render(saved, x, at["gap_ab"], at["gap_bc"])[at["b"] - at["gap_ab"]:],
                                  expected_b)
    assert seen["kept"] and seen["dialogs"] == ["after b.toml exists. Replace it?"]
    assert seen["phone_overflow"] <= 0, seen["too_wide"]
    assert seen["xruns_on_page"] <= xruns  # the page read its count before the session ended


ATTACKER_PAGE = """<!doctype html><title>another site</title><p id="out">trying</p><script>
const ws = new WebSocket("ws://127.0.0.1:{port}/ws?token={token}");
let opened = false;
ws.onopen = () => {{ opened = true;
  ws.send(JSON.stringify({{type: "bypass", id: 1, index: 0, bypassed: true}}));
  document.getElementById("out").textContent = "open"; }};
ws.onclose = () => {{ if (!opened) document.getElementById("out").textContent = "refused"; }};
</script>"""


def test_another_sites_page_in_the_same_browser_cannot_drive_the_session(server, browser, tmp_path):
    """A page from another origin (here another port on this machine) that even knows the
    token opens the session's WebSocket: the browser sends its Origin, the server refuses
    the handshake, and the chain is untouched."""
    import http.server
    import threading

    library = make_library(tmp_path / "library")
    ui = LiveUI(server, library / "rig.toml", "--blocksize", str(BLOCK), "--library", str(library))
    page_text = ATTACKER_PAGE.format(port=ui.port, token=ui.token).encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page_text)

        def log_message(self, *args):
            pass

    other_site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=other_site.serve_forever, daemon=True).start()
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{other_site.server_address[1]}/")
        expect(page.locator("#out")).to_have_text("refused")
        page.goto(ui.url)  # the session's own page, in the same browser
        expect(page.get_by_test_id("connection")).to_have_text("connected")
        expect(page.get_by_test_id("bypass-0")).to_have_attribute("aria-pressed", "false")  # the gate
    finally:
        page.close()
        other_site.shutdown()
        code, output, stderr = ui.stop()
    assert code == 0 and "Traceback" not in stderr, stderr
