"""``ampnet render`` and ``ampnet info`` end to end, through the real CLI."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from ampnet.cli import main
from ampnet.engine import Engine
from ampnet.formats import save_model
from tests.signals import guitar_like, random_model


@pytest.fixture
def model_path(tmp_path):
    path = tmp_path / "model.json"
    save_model(random_model(16, 1, seed=1, sample_rate=48000.0), path)
    return path


@pytest.fixture
def identity_model_path(tmp_path):
    """Head weights zero and skip on: the output is the input."""
    model = random_model(8, 1, seed=2)
    model.head_weight[:] = 0.0
    model.head_bias[:] = 0.0
    path = tmp_path / "identity.json"
    save_model(model, path)
    return path


def write(path, audio, rate=48000, subtype="FLOAT"):
    sf.write(str(path), audio.T if audio.ndim == 2 else audio, rate, subtype=subtype)
    return path


def test_render_equals_engine_and_keeps_rate_channels_length_subtype(tmp_path, model_path):
    stereo = np.stack([guitar_like(1.3, seed=1), guitar_like(1.3, seed=2)])
    src = write(tmp_path / "in.wav", stereo, subtype="PCM_24")
    out = tmp_path / "out.wav"
    assert main(["render", str(model_path), str(src), "-o", str(out), "--blocksize", "37"]) == 0
    info = sf.info(str(out))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (48000, 2, stereo.shape[1], "PCM_24")
    got, _ = sf.read(str(out), dtype="float32", always_2d=True)
    from ampnet.formats import load_model
    read_back, _ = sf.read(str(src), dtype="float32", always_2d=True)
    expected = Engine(load_model(model_path), channels=2).process(np.ascontiguousarray(read_back.T))
    expected = np.clip(expected, -1, 1)
    assert np.max(np.abs(got.T - expected)) < 2 ** -22  # 24-bit quantisation


def test_other_sample_rate_is_resampled_and_said(tmp_path, identity_model_path, capsys):
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = write(tmp_path / "in.wav", tone, rate=44100)
    out = tmp_path / "out.wav"
    assert main(["render", str(identity_model_path), str(src), "-o", str(out)]) == 0
    assert "resampled" in capsys.readouterr().out
    got, rate = sf.read(str(out), dtype="float32")
    assert rate == 44100 and got.size == tone.size
    # Identity model: resampling there and back must keep the tone in place.
    assert np.max(np.abs(got[1000:-1000] - tone[1000:-1000])) < 1e-3


def test_batch_of_folders_recursive_with_jobs(tmp_path, model_path):
    inputs = tmp_path / "takes"
    (inputs / "day2").mkdir(parents=True)
    write(inputs / "a.wav", guitar_like(0.5, seed=3))
    write(inputs / "day2" / "b.flac", guitar_like(0.7, seed=4), subtype="PCM_16")
    (inputs / "notes.txt").write_text("not audio")
    out_dir = tmp_path / "rendered"
    assert main(["render", str(model_path), str(inputs), "--out-dir", str(out_dir), "--jobs", "2"]) == 0
    assert sf.info(str(out_dir / "a.wav")).frames == 24000
    assert sf.info(str(out_dir / "day2" / "b.flac")).subtype == "PCM_16"
    assert not (out_dir / "notes.txt").exists()


def test_refuses_to_clobber_without_overwrite(tmp_path, model_path, capsys):
    src = write(tmp_path / "in.wav", guitar_like(0.2))
    out = write(tmp_path / "out.wav", np.zeros(10, dtype=np.float32))
    assert main(["render", str(model_path), str(src), "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert sf.info(str(out)).frames == 10
    assert main(["render", str(model_path), str(src), "-o", str(out), "--overwrite"]) == 0
    assert sf.info(str(out)).frames == 9600


def test_never_overwrites_an_input(tmp_path, model_path, capsys):
    src = write(tmp_path / "in.wav", guitar_like(0.2))
    before = src.read_bytes()
    assert main(["render", str(model_path), str(src), "-o", str(src), "--overwrite"]) == 1
    assert "input file itself" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_bad_inputs_fail_alone_with_one_clear_line(tmp_path, model_path, capsys):
    good = write(tmp_path / "good.wav", guitar_like(0.2))
    empty = write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32))
    fake = tmp_path / "fake.wav"
    fake.write_text("this is not audio")
    out_dir = tmp_path / "out"
    code = main(["render", str(model_path), str(good), str(empty), str(fake), "--out-dir", str(out_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{empty}: contains no audio" in err
    assert f"{fake}: not an audio file" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["ampnet-render.jsonl", "good.wav"]  # no partial or temp files


@pytest.mark.parametrize("case", ["missing", "empty-folder", "corrupt-model"])
def test_unusable_arguments_exit_nonzero(tmp_path, model_path, case, capsys):
    src = write(tmp_path / "in.wav", guitar_like(0.1))
    model, inputs = str(model_path), [str(src)]
    if case == "missing":
        inputs = [str(tmp_path / "nope.wav")]
    elif case == "empty-folder":
        (tmp_path / "empty").mkdir()
        inputs = [str(tmp_path / "empty")]
    else:
        broken = tmp_path / "broken.json"
        broken.write_text(model_path.read_text()[:500])
        model = str(broken)
    # A missing input or an empty folder is a bad file (exit 1, the rest would render);
    # a broken model stops everything (exit 2).
    assert main(["render", model, *inputs, "--out-dir", str(tmp_path / "o")]) == \
        (2 if case == "corrupt-model" else 1)
    err = capsys.readouterr().err.strip()
    assert err.startswith("ampnet: error: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_info_prints_architecture_and_speed(model_path, capsys):
    assert main(["info", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "1 layer(s) x 16 hidden" in out and "ms CPU per second" in out


def test_render_and_info_never_import_torch(tmp_path, model_path):
    src = write(tmp_path / "in.wav", guitar_like(0.1))
    code = (
        "import sys\n"
        "from ampnet.cli import main\n"
        f"assert main(['render', {str(model_path)!r}, {str(src)!r}, '-o', {str(tmp_path / 'o.wav')!r}]) == 0\n"
        f"assert main(['info', {str(model_path)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr


def test_long_file_renders_with_flat_memory(tmp_path):
    """Ten minutes of audio (about 230 MB as float32 in memory) through a small model
    in a child process: its peak resident memory stays far below the file's size."""
    model_path = tmp_path / "small.json"
    save_model(random_model(8, 1, seed=4), model_path)
    src = tmp_path / "long.flac"
    block = guitar_like(10.0, seed=5)
    with sf.SoundFile(str(src), "w", 48000, 2, subtype="PCM_16") as f:
        for _ in range(60):
            f.write(np.stack([block, block], axis=1))
    code = (
        "import re, sys\n"
        "from ampnet.cli import main\n"
        f"code = main(['render', {str(model_path)!r}, {str(src)!r}, '-o', {str(tmp_path / 'out.flac')!r}])\n"
        # VmHWM: this process's peak resident memory (ru_maxrss would include the
        # memory of the forked test runner before exec).
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', status).group(1)) // 1024)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.strip().splitlines()[-1])
    assert peak_mb < 300
    assert sf.info(str(tmp_path / "out.flac")).frames == 600 * 48000


def test_start_up_is_reported_apart_from_the_real_time_factor(tmp_path, model_path, capsys):
    """Compiling (first run) or loading the engine is not counted as rendering time."""
    sf.write(tmp_path / "in.wav", guitar_like(1.0), 48000)
    assert main(["render", str(model_path), str(tmp_path / "in.wav"), "-o", str(tmp_path / "o.wav")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "x real time); start-up " in line and "(compiling or loading the engine), not counted" in line


def test_several_models_get_a_folder_each_and_a_rerun_skips_what_is_finished(tmp_path, model_path, capsys):
    other = tmp_path / "other.json"
    save_model(random_model(8, 1, seed=5), other)
    src = write(tmp_path / "in.wav", guitar_like(0.3))
    out_dir = tmp_path / "out"
    args = ["render", str(model_path), str(other), str(src), "--out-dir", str(out_dir)]
    assert main(args) == 0
    first = {p: (out_dir / p).read_bytes() for p in ("model/in.wav", "other/in.wav")}
    capsys.readouterr()
    (out_dir / "other" / "in.wav").unlink()  # as if the first run had stopped before it
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 output(s) already rendered by an earlier run" in out and "rendered 1 file(s)" in out
    assert {p: (out_dir / p).read_bytes() for p in first} == first
    # A changed source is not "finished": its output is refused as an existing file.
    write(src, guitar_like(0.3, seed=9))
    assert main(args) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_cluster_without_ray_says_how_to_install_it(tmp_path, model_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as where it is missing
    src = write(tmp_path / "in.wav", guitar_like(0.1))
    assert main(["render", str(model_path), str(src), "--out-dir", str(tmp_path / "o"),
                 "--cluster", "local"]) == 2
    err = capsys.readouterr().err
    assert "pip install" in err and "ampnet[cluster]" in err and "Traceback" not in err


def test_a_node_that_does_not_see_the_files_is_named_with_the_path(tmp_path):
    from ampnet.cluster.connect import _can_see
    probe = tmp_path / ".probe"
    probe.write_text("token")
    assert _can_see([str(probe)], [str(probe)], "token")[1] is None
    assert "cannot read" in _can_see([str(tmp_path / "missing.wav")], [], "token")[1]
    assert "does not see" in _can_see([], [str(probe)], "another machine's token")[1]


def test_the_same_render_gives_the_same_bytes_at_another_time(tmp_path, model_path):
    """Float WAV outputs carry no PEAK chunk (libsndfile stamps it with the time of
    writing): a render is reproducible byte for byte, as a cluster's must be."""
    src = write(tmp_path / "in.wav", guitar_like(0.2))
    assert main(["render", str(model_path), str(src), "-o", str(tmp_path / "a.wav")]) == 0
    time.sleep(1.1)  # the chunk's clock counts seconds
    assert main(["render", str(model_path), str(src), "-o", str(tmp_path / "b.wav")]) == 0
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert b"PEAK" not in (tmp_path / "a.wav").read_bytes()
