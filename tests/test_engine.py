"""The streaming engine: parity with PyTorch, block-size invariance, state, allocation."""


import numba
import numpy as np
import pytest

from ampnet.engine import Engine, lstm_kernel
from ampnet.engine.activations import sigmoid32, tanh32
from tests.allocation import repeated_calls, traced_growth_and_peak
from tests.signals import guitar_like, random_model

torch_reference = pytest.importorskip("tests.torch_reference")

TEN_SECONDS = guitar_like(10.0, seed=1)


def run_whole(model, audio):
    return Engine(model).process(audio.copy())


def run_in_blocks(model, audio, sizes):
    engine = Engine(model)
    out = np.empty_like(audio)
    start, i = 0, 0
    while start < audio.size:
        size = sizes[i % len(sizes)]
        engine.process(audio[start:start + size], out[start:start + size])
        start += size
        i += 1
    return out


PARITY_HIDDEN_SIZES = [8, 16, 24, 32, 40, 64]


def test_parity_sizes_run_every_compiled_tile_width():
    widths = {lstm_kernel.tile_width(hidden) for hidden in PARITY_HIDDEN_SIZES}
    assert widths == set(lstm_kernel.TILE_WIDTHS)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("hidden", PARITY_HIDDEN_SIZES)
def test_matches_torch_lstm_on_ten_seconds(hidden, layers):
    model = random_model(hidden, layers, seed=hidden * 10 + layers)
    expected = torch_reference.torch_forward(model, TEN_SECONDS)
    got = run_whole(model, TEN_SECONDS)
    assert np.max(np.abs(got - expected)) < 1e-5


@pytest.mark.parametrize("skip", [True, False])
def test_matches_torch_with_input_scale_output_gain_and_skip(skip):
    model = random_model(16, 2, skip=skip, input_scale=3.7, output_gain=0.6, seed=5)
    audio = TEN_SECONDS[:96000]
    assert np.max(np.abs(run_whole(model, audio) - torch_reference.torch_forward(model, audio))) < 1e-5


def test_matches_torch_with_saturated_gates():
    """Biases and input weights scaled up put most gates deep in saturation
    (|pre-activation| mostly 5..30); recurrent weights stay as they are so that
    the reference itself is not chaotic and float32 rounding is not amplified."""
    model = random_model(32, 2, seed=7)
    for layer in model.layers:
        layer.weight_ih *= 20.0
        layer.bias_ih *= 100.0
    saturated = np.abs(model.layers[0].bias_ih + model.layers[0].bias_hh) > 5
    assert saturated.mean() > 0.6
    audio = TEN_SECONDS[:48000]
    got = run_whole(model, audio)
    expected = torch_reference.torch_forward(model, audio)
    assert np.max(np.abs(got - expected)) < 1e-5


def test_matches_torch_with_knobs_and_initial_state():
    model = random_model(24, 2, knobs=2, seed=9)
    rng = np.random.default_rng(0)
    model.initial_h = rng.uniform(-0.5, 0.5, (2, 24)).astype(np.float32)
    model.initial_c = rng.uniform(-0.5, 0.5, (2, 24)).astype(np.float32)
    audio = TEN_SECONDS[:48000]
    assert np.max(np.abs(run_whole(model, audio) - torch_reference.torch_forward(model, audio))) < 1e-5


@pytest.mark.parametrize("sizes", [[1], [7], [64], [4096], "random"], ids=str)
def test_any_block_size_equals_one_whole_pass(sizes):
    model = random_model(32, 2, seed=3)
    audio = TEN_SECONDS[:48000 * 2]
    if sizes == "random":
        sizes = list(np.random.default_rng(4).integers(1, 3000, 200))
    np.testing.assert_array_equal(run_in_blocks(model, audio, sizes), run_whole(model, audio))


def test_reset_restores_initial_state():
    model = random_model(16, 1, seed=2)
    engine = Engine(model)
    audio = TEN_SECONDS[:4800]
    first = engine.process(audio.copy())
    engine.process(TEN_SECONDS[4800:9600].copy())
    engine.reset()
    np.testing.assert_array_equal(engine.process(audio.copy()), first)


def test_channels_have_their_own_state():
    model = random_model(16, 2, seed=6)
    left, right = TEN_SECONDS[:24000], guitar_like(0.5, seed=11)
    engine = Engine(model, channels=2)
    out = np.empty((2, 24000), dtype=np.float32)
    for start in range(0, 24000, 64):
        block = np.ascontiguousarray(np.stack([left[start:start + 64], right[start:start + 64]]))
        out[:, start:start + 64] = engine.process(block)
    np.testing.assert_array_equal(out[0], run_whole(model, left))
    np.testing.assert_array_equal(out[1], run_whole(model, right))


def test_process_allocates_nothing():
    model = random_model(32, 2, seed=8)
    engine = Engine(model, channels=2)
    block = np.ascontiguousarray(np.stack([TEN_SECONDS[:4096]] * 2))
    out = np.empty_like(block)
    mono_engine = Engine(model)
    mono, mono_out = TEN_SECONDS[:4096].copy(), np.empty(4096, dtype=np.float32)
    grown, peak = traced_growth_and_peak(
        repeated_calls((engine.process, block, out), (mono_engine.process, mono, mono_out)), 100, 500)
    # Nothing allocated from ampnet's code accumulates over 1000 calls (a per-call
    # object would add tens of kilobytes; the slack is CPython's free lists)...
    assert sum(d.size_diff for d in grown) < 1024, grown[0].traceback.format()
    # ...and nothing the size of a block (16 KiB per channel) appears, even briefly.
    assert peak < 2048


def test_rejects_wrong_dtype_or_layout_with_clear_message():
    engine = Engine(random_model(8, 1), channels=2)
    with pytest.raises(TypeError, match="float32"):
        engine.process(np.zeros((2, 16)))
    with pytest.raises(TypeError, match="C-contiguous"):
        engine.process(np.zeros((2, 16), dtype=np.float32)[:, ::2])


@numba.njit
def _apply(fn_id, x, out):
    for i in range(x.size):
        out[i] = tanh32(x[i]) if fn_id == 0 else sigmoid32(x[i])


def _every_scale_of_float32():
    rng = np.random.default_rng(0)
    dense = np.linspace(-20, 20, 2_000_001, dtype=np.float32)
    magnitudes = np.logspace(-30, 38, 200_000).astype(np.float32)
    extremes = np.array([0.0, -0.0, np.finfo(np.float32).max, -np.finfo(np.float32).max,
                         np.inf, -np.inf, np.finfo(np.float32).tiny], dtype=np.float32)
    random = rng.standard_normal(1_000_000).astype(np.float32) * 10
    return np.concatenate([dense, magnitudes, -magnitudes, extremes, random])


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_activations_accurate_for_every_input(name):
    x = _every_scale_of_float32()
    out = np.empty_like(x)
    _apply(0 if name == "tanh" else 1, x, out)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        reference = np.tanh(x64) if name == "tanh" else 1.0 / (1.0 + np.exp(-x64))
    assert np.max(np.abs(out.astype(np.float64) - reference)) < 1e-6
