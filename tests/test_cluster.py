"""``ampnet render --cluster``: the same batch on Ray as on this machine, byte for byte;
a worker killed mid-file, a batch interrupted and run again, two nodes on loopback.

Each test starts its own cluster (``--cluster local``, or ``ray start`` processes) and
stops it. CI runs them in a step of their own: ``pytest -m cluster``.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ampnet.formats import save_model
from ampnet.render import JOURNAL_NAME
from tests.signals import guitar_like, random_model

pytestmark = pytest.mark.cluster
ray = pytest.importorskip("ray")
RATE = 48000


def ampnet(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "ampnet", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run(*args, env=None):
    process = ampnet(*args, env=env)
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


@pytest.fixture
def library(tmp_path):
    """Two presets over two models, and four takes (one of them 40 s long)."""
    save_model(random_model(16, 1, seed=1), tmp_path / "amp.json")
    save_model(random_model(12, 1, seed=2), tmp_path / "pedal.json")
    (tmp_path / "clean.toml").write_text("[[chain]]\ntype = 'gate'\nthreshold_db = -70\n"
                                         "[[chain]]\ntype = 'model'\npath = 'amp.json'\n")
    (tmp_path / "dirty.toml").write_text("[[chain]]\ntype = 'model'\npath = 'pedal.json'\n"
                                         "[[chain]]\ntype = 'eq'\nbass_db = 3\n")
    takes = tmp_path / "takes"
    (takes / "day2").mkdir(parents=True)
    sf.write(str(takes / "a.wav"), guitar_like(2.0, seed=3), RATE, subtype="PCM_24")
    sf.write(str(takes / "b.flac"), guitar_like(1.5, seed=4), RATE, subtype="PCM_16")
    sf.write(str(takes / "day2" / "c.wav"), guitar_like(1.0, seed=5), 44100, subtype="FLOAT")
    return tmp_path


def files_under(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != JOURNAL_NAME}


def journal(folder):
    import json
    return [json.loads(line) for line in (folder / JOURNAL_NAME).read_text().splitlines()]


def test_a_batch_through_two_presets_on_a_local_cluster_equals_the_local_render(library):
    presets = [library / "clean.toml", library / "dirty.toml"]
    code, out, err = run("render", *presets, library / "takes", "--out-dir", library / "here")
    assert code == 0, err
    code, out, err = run("render", *presets, library / "takes", "--out-dir", library / "there",
                         "--cluster", "local", "--jobs", "2")
    assert code == 0, err
    here, there = files_under(library / "here"), files_under(library / "there")
    assert sorted(here) == ["clean/a.wav", "clean/b.flac", "clean/day2/c.wav",
                            "dirty/a.wav", "dirty/b.flac", "dirty/day2/c.wav"]
    assert here == there  # byte for byte
    assert "rendered 6 file(s)" in out
    entries = journal(library / "there")
    assert sorted(e["output"] for e in entries) == sorted(here)
    assert {Path(e["model"]).name for e in entries} == {"clean.toml", "dirty.toml"}


def long_take(library, seconds=40):
    sf.write(str(library / "takes" / "long.wav"), guitar_like(seconds, seed=6), RATE,
             subtype="FLOAT")


def partial_files_in(folder):
    return [p for p in Path(folder).rglob("*") if ".partial-" in p.name]


def writer_of(path):
    """The process that has ``path`` open."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    return int(pid)
        except OSError:
            continue
    return None


def test_a_worker_killed_mid_file_is_retried_and_leaves_no_partial_file(library):
    long_take(library)
    out_dir = library / "out"
    render = ampnet("render", library / "amp.json", library / "takes" / "long.wav",
                    "--out-dir", out_dir, "--cluster", "local", "--jobs", "1")
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and time.monotonic() < deadline and render.poll() is None:
        for partial in partial_files_in(out_dir):
            pid = writer_of(partial.resolve())
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = partial
                break
        time.sleep(0.05)
    out, err = render.communicate(timeout=300)
    assert killed is not None, "never saw the worker write"
    assert render.returncode == 0, err
    assert partial_files_in(out_dir) == []
    code, _, err = run("render", library / "amp.json", library / "takes" / "long.wav", "-o",
                       library / "local.wav")
    assert code == 0, err
    assert (out_dir / "long.wav").read_bytes() == (library / "local.wav").read_bytes()


def test_a_rerun_after_an_interruption_renders_only_what_is_missing(library):
    long_take(library, 180)  # seconds of rendering each: the interruption lands mid-batch
    out_dir = library / "out"
    args = ("render", library / "clean.toml", library / "dirty.toml", library / "takes",
            "--out-dir", out_dir, "--cluster", "local", "--jobs", "1")
    render = ampnet(*args)
    deadline = time.monotonic() + 180
    while not ((out_dir / JOURNAL_NAME).exists() and journal(out_dir)):
        assert time.monotonic() < deadline and render.poll() is None, render.communicate()
        time.sleep(0.05)
    render.send_signal(signal.SIGINT)
    _, err = render.communicate(timeout=120)
    assert render.returncode != 0 and "Traceback" not in err, err
    assert partial_files_in(out_dir) == []
    finished = {e["output"] for e in journal(out_dir)}
    assert 0 < len(finished) < 8
    code, out, err = run(*args)
    assert code == 0, err
    assert f"{len(finished)} output(s) already rendered by an earlier run" in out
    assert f"rendered {8 - len(finished)} file(s)" in out
    code, _, err = run("render", library / "clean.toml", library / "dirty.toml", library / "takes",
                       "--out-dir", library / "local")
    assert code == 0, err
    assert files_under(out_dir) == files_under(library / "local")


@pytest.fixture
def two_nodes(tmp_path):
    """A head and a second node, separate processes on loopback, one CPU each, with Ray's
    token authentication (every process, the command's too, carries the token).
    Yields ``(address, environment)``."""
    import secrets

    port = 6390 + os.getpid() % 500
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    temp = Path("/tmp") / f"ray-{os.getpid()}"  # short: Ray's socket paths have a length limit
    ray_cli = str(Path(sys.executable).parent / "ray")
    start = [ray_cli, "start", "--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([*start, "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                        "--include-dashboard", "false", "--temp-dir", str(temp)],
                       check=True, env=env, capture_output=True, timeout=180)
        subprocess.run([*start, "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1"],
                       check=True, env=env, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"],
                       env=env, capture_output=True, timeout=120)


def test_two_nodes_render_the_batch_as_this_machine_does(library, two_nodes):
    address, env = two_nodes
    presets = [library / "clean.toml", library / "dirty.toml"]
    code, out, err = run("render", *presets, library / "takes", "--out-dir", library / "there",
                         "--cluster", address, env=env)
    assert code == 0, err
    code, _, err = run("render", *presets, library / "takes", "--out-dir", library / "here")
    assert code == 0, err
    assert files_under(library / "here") == files_under(library / "there")


def capture_folder(root):
    """Two captures of two synthetic devices, as NAME/dry.wav and NAME/wet.wav."""
    from scipy import signal as scipy_signal

    for name, drive in (("soft", 2.0), ("hard", 8.0)):
        folder = root / name
        folder.mkdir(parents=True)
        dry = guitar_like(8.0, seed=len(name))
        wet = 0.5 * np.tanh(drive * scipy_signal.lfilter([0.3], [1, -0.7], dry))
        sf.write(str(folder / "dry.wav"), dry, RATE, subtype="FLOAT")
        sf.write(str(folder / "wet.wav"), wet.astype(np.float32), RATE, subtype="FLOAT")
    return root


def test_a_set_of_captures_trains_on_the_cluster_as_it_does_here(tmp_path):
    from ampnet.formats import load_model
    pytest.importorskip("torch")
    captures = capture_folder(tmp_path / "captures")
    settings = ("--hidden", "4", "--epochs", "2", "--minutes", "5", "--batch", "4", "--seed", "3")
    code, out, err = run("train", captures, "-o", tmp_path / "here", *settings)
    assert code == 0, err
    code, out, err = run("train", captures, "-o", tmp_path / "there", *settings,
                         "--cluster", "local")
    assert code == 0, err
    assert "trained 2 of 2 model(s)" in out
    for name in ("soft", "hard"):
        here, there = (load_model(tmp_path / f / f"{name}.json") for f in ("here", "there"))
        np.testing.assert_array_equal(here.head_weight, there.head_weight)
        np.testing.assert_array_equal(here.head_bias, there.head_bias)
        for a, b in zip(here.layers, there.layers, strict=True):
            for field in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert here.input_scale == there.input_scale
        assert (tmp_path / "there" / f"{name}.report.json").exists()


def test_a_sweep_writes_the_best_finished_trial_with_its_table(tmp_path):
    import json

    from ampnet.formats import load_model
    pytest.importorskip("torch")
    captures = capture_folder(tmp_path / "captures")
    out = tmp_path / "best.json"
    code, stdout, err = run("train", captures / "hard" / "dry.wav", captures / "hard" / "wet.wav",
                            "-o", out, "--epochs", "4", "--batch", "4", "--minutes", "5",
                            "--sweep", "hidden=2,6", "--sweep", "lr=0.01",
                            "--cluster", "local")
    assert code == 0, err + stdout
    report = json.loads((tmp_path / "best.report.json").read_text())
    rows = report["sweep"]
    assert sorted(r["hidden"] for r in rows) == [2, 6] and all(r["lr"] == 0.01 for r in rows)
    finished = [r for r in rows if r["status"] == "finished"]
    best = min(finished, key=lambda r: r["validation_esr"])
    assert load_model(out).hidden_size == best["hidden"]
    assert report["validation_esr"] == best["validation_esr"]
    assert "<- best" in stdout
