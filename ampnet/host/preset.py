"""Presets: a chain and its parameters in a TOML file.

::

    name = "Tilt drive, cabinet"

    [[chain]]
    type = "gate"            # gate, gain, model, eq, cabinet, dc_blocker, mix
    threshold_db = -55

    [[chain]]
    type = "model"
    path = "gx-tiltdrive.json"   # relative to this file
    normalize = true             # loudness normalisation
    # knob values of conditioned models go here too, e.g.  gain = 0.7

    [[chain]]
    type = "cabinet"
    path = "cab-synthetic.wav"

Every entry may also say ``bypass = true``. A model file given where a preset is
expected is a chain of that one model.
"""

import sys
from pathlib import Path

from ampnet import limits
from ampnet.errors import AmpnetError
from ampnet.host.chain import Chain
from ampnet.host.processors import Cabinet, DCBlocker, Gain, Mix, NeuralModel, NoiseGate, ToneStack

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SIMPLE_TYPES = {cls.type_name: cls for cls in (Gain, NoiseGate, ToneStack, DCBlocker, Mix)}
TYPES = sorted(list(SIMPLE_TYPES) + ["model", "cabinet"])


class ChainSpec:
    """A chain described but not yet built: processors and where they came from.
    ``sample_rate`` is the rate its models need (None when it has no model)."""

    def __init__(self, processors, source, name=None, bypassed=()):
        self.processors, self.source = processors, Path(source)
        self.name = name or self.source.stem
        self.bypassed = set(bypassed)
        rates = {p.rate(): p for p in processors if p.rate() is not None}
        if len(rates) > 1:
            found = ", ".join(f"{p.label} at {r:g} Hz" for r, p in rates.items())
            raise AmpnetError(f"{source}: the models run at different sample rates ({found}); "
                              "use models trained at one rate")
        self.sample_rate = next(iter(rates), None)

    def build(self, rate, channels=1, max_block=4096):
        """A :class:`Chain` at ``rate`` Hz, with bypasses as the preset says."""
        chain = Chain(self.processors, rate, channels, max_block)
        for index in self.bypassed:
            chain.set_bypass(index, True)
        chain.reset()
        return chain

    def set_knobs(self, assignments):
        """Apply ``--param name=value`` settings to every model that has knob ``name``."""
        for text in assignments:
            name, sep, value = text.partition("=")
            try:
                number = float(value)
            except ValueError:
                number = None
            if not sep or not name.strip() or number is None:
                raise AmpnetError(f"--param {text!r}: write NAME=VALUE, e.g. --param gain=0.7")
            name = name.strip()
            models = [p for p in self.processors if isinstance(p, NeuralModel) and name in p.PARAMS]
            if not models:
                knobs = sorted({k for p in self.processors if isinstance(p, NeuralModel) for k in p.PARAMS})
                raise AmpnetError(f"--param {name}: no model in {self.source} has that knob "
                                  f"(knobs: {', '.join(knobs) or 'none; the models are not conditioned'})")
            for p in models:
                try:
                    p.values[name] = p.check(name, number)
                except ValueError as err:
                    raise AmpnetError(f"--param {text}: {err}") from None


def load_spec(path, params=()) -> ChainSpec:
    """A preset (``.toml``) or a model file (any format ampnet reads) as a chain, with
    ``params`` (``NAME=VALUE`` knob settings, as ``--param`` gives them) applied."""
    from ampnet.formats import load_model

    path = Path(path)
    if path.suffix.lower() == ".toml":
        spec = load_preset(path)
    else:
        spec = ChainSpec([NeuralModel(load_model(path), path)], path, name=None)
    spec.set_knobs(params)
    return spec


def load_preset(path) -> ChainSpec:
    path = Path(path)
    if not path.is_file():
        raise AmpnetError(f"{path}: preset not found" if not path.exists() else
                          f"{path}: is not a preset file")
    limits.check_file_size(path, limits.MAX_PRESET_FILE_BYTES, "a preset")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as err:
        raise AmpnetError(f"{path}: not a valid TOML preset ({str(err)[:120]})") from None
    unknown = set(doc) - {"name", "chain"}
    if unknown:
        raise AmpnetError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (allowed: name, chain)")
    entries = doc.get("chain")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise AmpnetError(f"{path}: chain: needs one or more [[chain]] tables, each with a type "
                          f"({', '.join(TYPES)})")
    if len(entries) > limits.MAX_PRESET_ENTRIES:
        raise AmpnetError(f"{path}: chain: {len(entries)} processors; a preset holds up to "
                          f"{limits.MAX_PRESET_ENTRIES}")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise AmpnetError(f"{path}: name: must be text")
    processors, bypassed = [], []
    for i, entry in enumerate(entries):
        where = f"{path}: chain[{i + 1}]"
        processors.append(_processor(entry, where, path.parent))
        if entry.get("bypass", False) is True:
            bypassed.append(i)
    return ChainSpec(processors, path, name=name, bypassed=bypassed)


def _processor(entry, where, base):
    entry = dict(entry)
    kind = entry.pop("type", None)
    bypass = entry.pop("bypass", False)
    if not isinstance(bypass, bool):
        raise AmpnetError(f"{where}.bypass: must be true or false")
    if kind not in TYPES:
        raise AmpnetError(f"{where}.type: {kind!r} is not a processor type (allowed: {', '.join(TYPES)})")
    where = f"{where} ({kind})"
    try:
        if kind in SIMPLE_TYPES:
            return SIMPLE_TYPES[kind](**entry)
        file = _path(entry.pop("path", None), where, base)
        normalize = entry.pop("normalize", kind == "cabinet")
        if not isinstance(normalize, bool):
            raise ValueError("normalize must be true or false")
        if kind == "cabinet":
            return Cabinet(file, normalize=normalize, **entry)
        from ampnet.formats import load_model
        return NeuralModel(load_model(file), file, normalize=normalize, **entry)
    except (ValueError, AmpnetError) as err:
        # A file the entry names is at fault: the line names the preset and the entry
        # too, since a user with many presets needs both.
        raise AmpnetError(f"{where}: {err}") from None


def _path(value, where, base):
    if not isinstance(value, str) or not value:
        raise AmpnetError(f"{where}.path: give the file, relative to the preset")
    return (base / value).resolve() if not Path(value).is_absolute() else Path(value)


def preset_text(processors, bypassed, name, folder):
    """A preset's TOML text for ``processors`` (with their current values) and
    ``bypassed`` (a flag per processor), named ``name``, its file paths relative to
    ``folder`` (where the preset will be) where they can be. :func:`load_preset` reads
    it back to the same chain."""
    from ampnet.io.toml_text import toml_text

    folder = Path(folder).resolve()
    entries = []
    for p, off in zip(processors, bypassed):
        entry = {"type": p.type_name}
        if isinstance(p, (NeuralModel, Cabinet)):
            if p.path is None:
                raise AmpnetError(f"{p.label}: was not loaded from a file, so a preset cannot "
                                  "name it")
            file = Path(p.path).resolve()
            entry["path"] = (file.relative_to(folder).as_posix() if file.is_relative_to(folder)
                             else str(file))
            entry["normalize"] = p.normalize
        entry.update(p.values)
        if off:
            entry["bypass"] = True
        entries.append(entry)
    return toml_text({"name": name, "chain": entries},
                     ["ampnet preset: 'ampnet live THIS_FILE' or 'ampnet render THIS_FILE ...'",
                      "plays it; paths are relative to this file."])
