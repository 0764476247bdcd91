"""The null test: the model as ``ampnet render`` plays it, against the device.

Capture makers judge a model by rendering the dry file and subtracting the
device's own recording of it. This module computes that figure for the report,
so the number ``ampnet train`` prints is the one a user's null test gives:

- the model's output is the real-time engine's, run over the dry recording *as
  read from the file* from its first sample with a fresh state (no DC removal,
  no trimming): what ``ampnet render MODEL DRY`` writes;
- it is compared with the wet recording advanced by the pure latency ``L`` only:
  output frame ``n`` against wet frame ``n + L`` (frames where either is missing
  are left out);
- **DC is removed from both sides** (each side's mean over the compared frames)
  before ``ESR = sum((y - ŷ)^2) / sum(y^2)``: a recording chain's DC offset is not
  the device's tone, and the model is trained on DC-free targets.

Shapes: mono float32 arrays ``(frames,)``.
"""

from dataclasses import dataclass

import numpy as np

from ampnet.engine import Engine

DC_HANDLING = "removed from both sides (each side's mean over the compared frames)"


@dataclass
class NullTest:
    esr: float
    first_frame: int  # of the dry file (render output), inclusive
    last_frame: int  # exclusive
    output: np.ndarray  # the model's output over those frames, DC removed
    target: np.ndarray  # the wet over the same frames (advanced by the latency), DC removed


def render_output(model, dry, settings=None):
    """The engine's output for the whole of ``dry``, from a fresh state, with the knobs
    at ``settings`` (name -> value in the knob's units; others at their defaults), as
    ``ampnet render --param`` plays it."""
    engine = Engine(model)
    engine.set_knobs(settings)
    return engine.process(np.ascontiguousarray(dry, dtype=np.float32).copy())


def null_test(model, dry, wet, latency, first_frame=0, last_frame=None, output=None,
              settings=None) -> NullTest:
    """ESR of ``model`` rendering ``dry`` (knobs at ``settings``) against ``wet`` delayed
    by ``latency`` samples, over dry frames ``[first_frame, last_frame)`` (default:
    all). ``output`` may pass a render of ``dry`` already made."""
    if output is None:
        output = render_output(model, dry, settings)
    last = dry.size if last_frame is None else min(last_frame, dry.size)
    first = max(first_frame, -latency)  # wet frame n + latency must exist
    last = min(last, wet.size - latency)
    if last <= first:
        raise ValueError("the dry and wet recordings do not overlap at this latency")
    ours = output[first:last].astype(np.float64)
    theirs = wet[first + latency:last + latency].astype(np.float64)
    ours -= ours.mean()
    theirs -= theirs.mean()
    esr = float(np.sum((theirs - ours) ** 2) / max(np.sum(theirs ** 2), 1e-20))
    return NullTest(esr, int(first), int(last), ours.astype(np.float32), theirs.astype(np.float32))
