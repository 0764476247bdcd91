"""A capture set: recordings of one device at one or more knob settings.

A *capture* is a dry (DI) recording, the same signal through the device (wet),
and the knob values it was recorded at, in the user's own units. A set is the
training captures plus optional validation takes (other settings are the real
test of a knob model) and test takes (real playing). It comes from the command
line (``WET@drive=0.1,tone=0.2``) or from a TOML manifest::

    # session.toml: paths are relative to this file
    dry = "di.flac"                    # the dry of every capture that names none

    [knobs]                            # optional: range and default in your units
    drive = { min = 0, max = 10, default = 5 }

    [[capture]]
    wet = "drive2_tone5.flac"
    drive = 2
    tone = 5

    [[validation]]                     # optional; at settings you did not train on
    dry = "di_val.flac"
    wet = "val_drive7_tone3.flac"
    drive = 7
    tone = 3

:func:`knobs_of` derives the model's knobs from the set and checks it: every
capture gives every knob, each knob has at least two captured values, the
validation and test settings lie inside the ranges. Captures without knob values
are takes of one setting (a DI and the same DI played hotter, say): one model
without knobs, trained on all of them.
"""

import math
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.formats.model import Knob

MAX_CAPTURES = 1024
MAX_MANIFEST_BYTES = 1024 * 1024
SAFE_PAIR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
FILE_KEYS = ("dry", "wet")
NOTE_KEYS = ("recorded",)  # a capture's notes (ampnet capture writes them); not knobs


@dataclass
class Capture:
    """A dry recording, the device's recording of it (file paths), and the knob
    values it was recorded at (name -> value, in the user's units)."""

    dry: str
    wet: str
    settings: dict = field(default_factory=dict)

    def label(self) -> str:
        """``drive=0.1 tone=0.2``; without knobs, the wet file's name."""
        return describe_setting(self.settings) if self.settings else Path(self.wet).name


@dataclass
class KnobDeclaration:
    """A knob's range and default as the user declares them (None: from the captures)."""

    minimum: float | None = None
    maximum: float | None = None
    default: float | None = None


@dataclass
class CaptureSet:
    captures: list
    validation: list = field(default_factory=list)
    test: list = field(default_factory=list)
    knobs: dict = field(default_factory=dict)  # name -> KnobDeclaration


def describe_setting(settings) -> str:
    return " ".join(f"{name}={value:g}" for name, value in settings.items()) or "(no knobs)"


def parse_wet_argument(text, where="argument"):
    """``"wet.flac@drive=0.1,tone=0.2"`` -> ``("wet.flac", {"drive": 0.1, "tone": 0.2})``;
    a path without ``@`` has no settings."""
    path, at, rest = text.rpartition("@")
    if not at:
        return text, {}
    settings = {}
    for item in rest.split(","):
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or not name:
            raise AmpnetError(f"{where} {text!r}: knob settings go after '@' as NAME=VALUE "
                              "separated by commas, e.g. wet.flac@drive=0.5,tone=3")
        if name in settings:
            raise AmpnetError(f"{where} {text!r}: knob {name!r} is set twice")
        settings[name] = _knob_value(value.strip(), f"{where} {text!r}: {name}")
    return path, settings


def _knob_value(value, where):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AmpnetError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number) or abs(number) > limits.MAX_GAIN:
        raise AmpnetError(f"{where}: {value!r} is not a usable knob value")
    return number


def read_pairs(path):
    """A manifest of independent captures (one model each), or None when ``path`` is a
    capture-set manifest instead::

        # captures.toml: paths are relative to this file
        [[pair]]
        name = "plexi-crunch"          # the model's name: plexi-crunch.json
        dry = "plexi/dry.wav"
        wet = "plexi/wet.wav"

    Returns ``{name: (dry, wet)}``."""
    path = Path(path)
    doc = _read_toml(path)
    if "pair" not in doc:
        return None
    items = doc["pair"]
    if set(doc) != {"pair"} or not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise AmpnetError(f"{path}: a manifest of pairs has only [[pair]] tables "
                          "(name, dry, wet)")
    if not 1 <= len(items) <= MAX_CAPTURES:
        raise AmpnetError(f"{path}: {len(items)} [[pair]] entries; give 1 to {MAX_CAPTURES}")
    pairs = {}
    for number, item in enumerate(items, 1):
        where = f"{path}: [[pair]] #{number}"
        if set(item) != {"name", "dry", "wet"} or not all(isinstance(v, str) for v in item.values()):
            raise AmpnetError(f"{where}: give name, dry and wet, each in quotes")
        if not SAFE_PAIR_NAME.fullmatch(item["name"]) or item["name"] in pairs:
            raise AmpnetError(f"{where}: name {item['name']!r}: a distinct file name (letters, "
                              "digits, '.', '-', '_')")
        pairs[item["name"]] = (path.parent / item["dry"], path.parent / item["wet"])
    return pairs


def _read_toml(path):
    try:
        size = path.stat().st_size
    except OSError as err:
        raise AmpnetError(f"{path}: cannot read the manifest ({err.strerror})") from None
    if size > MAX_MANIFEST_BYTES:
        raise AmpnetError(f"{path}: {size} bytes; a capture manifest is at most "
                          f"{MAX_MANIFEST_BYTES} bytes")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise AmpnetError(f"{path}: not a valid TOML manifest ({err})") from None


def read_manifest(path) -> CaptureSet:
    """Read a TOML capture manifest (see the module docstring); paths are relative to it."""
    path = Path(path)
    doc = _read_toml(path)
    known = {"dry", "knobs", "capture", "validation", "test", "session"}  # session: notes
    unknown = sorted(set(doc) - known)
    if unknown:
        raise AmpnetError(f"{path}: unknown key(s) {', '.join(unknown)} (a manifest has "
                          f"{', '.join(sorted(known))})")
    base = path.parent
    default_dry = doc.get("dry")
    if default_dry is not None and not isinstance(default_dry, str):
        raise AmpnetError(f"{path}: dry: give a file name in quotes")

    def entries(key):
        items = doc.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise AmpnetError(f"{path}: {key}: write each one as a [[{key}]] table")
        if len(items) > MAX_CAPTURES:
            raise AmpnetError(f"{path}: {len(items)} [[{key}]] entries; at most {MAX_CAPTURES}")
        return [_manifest_capture(item, f"{path}: [[{key}]] #{i + 1}", base, default_dry)
                for i, item in enumerate(items)]

    captures = entries("capture")
    if not captures:
        raise AmpnetError(f"{path}: no [[capture]] entries; add one per wet recording "
                          "(wet = \"file\" and its knob values)")
    knobs = doc.get("knobs", {})
    if not isinstance(knobs, dict) or len(knobs) > limits.MAX_KNOBS:
        raise AmpnetError(f"{path}: [knobs]: a table of at most {limits.MAX_KNOBS} knobs, e.g. "
                          "drive = { min = 0, max = 10, default = 5 }")
    declared = {}
    for name, spec in knobs.items():
        if not isinstance(spec, dict) or set(spec) - {"min", "max", "default"}:
            raise AmpnetError(f"{path}: [knobs] {name}: give {{ min = ..., max = ..., default = ... }} "
                              "(each optional)")
        values = {k: _knob_value(v, f"{path}: [knobs] {name}.{k}") for k, v in spec.items()}
        declared[name] = KnobDeclaration(values.get("min"), values.get("max"), values.get("default"))
    return CaptureSet(captures, entries("validation"), entries("test"), declared)


def _manifest_capture(item, where, base, default_dry):
    dry = item.get("dry", default_dry)
    wet = item.get("wet")
    for key, value in (("dry", dry), ("wet", wet)):
        if not isinstance(value, str) or not value:
            hint = " (or a top-level dry = \"...\" for all)" if key == "dry" else ""
            raise AmpnetError(f"{where}: give {key} = \"file\"{hint}")
    settings = {name: _knob_value(value, f"{where}: {name}")
                for name, value in item.items() if name not in FILE_KEYS + NOTE_KEYS}
    return Capture(str(base / dry), str(base / wet), settings)


def knobs_of(capture_set: CaptureSet) -> list:
    """The model's knobs (:class:`~ampnet.formats.model.Knob`, in a stable order) after
    checking the set; raises :class:`AmpnetError` with a line naming the capture and
    the fix. An empty list: the set has no knobs: every take is of one setting."""
    captures = capture_set.captures
    if len(captures) > MAX_CAPTURES:
        raise AmpnetError(f"{len(captures)} captures; ampnet trains on at most {MAX_CAPTURES}")
    names = list(captures[0].settings)
    for role, takes in (("capture", captures), ("validation", capture_set.validation),
                        ("test", capture_set.test)):
        for take in takes:
            missing = [n for n in names if n not in take.settings]
            extra = [n for n in take.settings if n not in names]
            if missing or extra:
                raise AmpnetError(
                    f"{take.wet}: {role} at {take.label()} "
                    + (f"does not give knob(s) {', '.join(missing)}" if missing else
                       f"gives knob(s) {', '.join(extra)} that {captures[0].wet} does not")
                    + f"; every capture gives every knob ({', '.join(names) or 'none'})")
    if len(names) > limits.MAX_KNOBS:
        raise AmpnetError(f"{len(names)} knobs ({', '.join(names)}); a model has at most "
                          f"{limits.MAX_KNOBS}")
    for name in names:
        if not 0 < len(name) <= limits.MAX_KNOB_NAME:
            raise AmpnetError(f"knob name {name[:80]!r}: 1 to {limits.MAX_KNOB_NAME} characters")
    undeclared = sorted(set(capture_set.knobs) - set(names))
    if undeclared:
        raise AmpnetError(f"[knobs] declares {', '.join(undeclared)}, which no capture gives")
    if not names:  # one setting: one take, or several (e.g. a DI and the same DI hotter)
        return []
    knobs = []
    for name in names:
        values = sorted({c.settings[name] for c in captures})
        if len(values) < 2:
            raise AmpnetError(f"knob {name}: every capture is at {values[0]:g}; a knob needs "
                              "captures at two or more values (or leave it out)")
        declared = capture_set.knobs.get(name, KnobDeclaration())
        low = values[0] if declared.minimum is None else declared.minimum
        high = values[-1] if declared.maximum is None else declared.maximum
        if not low < high or values[0] < low or values[-1] > high:
            raise AmpnetError(f"knob {name}: the declared range {low:g} to {high:g} must contain "
                              f"the captured values ({values[0]:g} to {values[-1]:g})")
        default = (low + high) / 2 if declared.default is None else declared.default
        if not low <= default <= high:
            raise AmpnetError(f"knob {name}: default {default:g} is outside {low:g} to {high:g}")
        knobs.append(Knob(name, float(default), float(low), float(high)))
    for role, takes in (("validation", capture_set.validation), ("test", capture_set.test)):
        for take in takes:
            for knob in knobs:
                value = take.settings[knob.name]
                if not knob.minimum <= value <= knob.maximum:
                    raise AmpnetError(f"{take.wet}: {role} at {knob.name}={value:g} is outside "
                                      f"the trained range {knob.minimum:g} to {knob.maximum:g}; a "
                                      "model cannot be judged beyond what it was trained on")
    return knobs


def repeated_settings(captures) -> list:
    """Labels of settings captured more than once (fine: more data; worth saying)."""
    counts = Counter(tuple(sorted(c.settings.items())) for c in captures)
    return [describe_setting(dict(s)) for s, n in counts.items() if n > 1]
