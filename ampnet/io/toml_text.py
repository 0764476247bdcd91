"""TOML text from plain data, for the files ampnet writes (capture manifests, presets).

Python reads TOML (``tomllib``) but has no writer, and the files ampnet writes hold
only strings, numbers, booleans, inline tables of those and arrays of tables: this
writes exactly that, and parses its own output before handing it back, so a bug
here cannot leave a file that ampnet would then refuse to read.
"""

import json
import numbers
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def toml_text(doc, comments=()):
    """``doc`` (a dict: plain values first, then tables, then arrays of tables) as TOML
    text, after ``comments`` (lines, each written as ``# line``)."""
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in doc.items() if isinstance(v, list)}
    lines = [f"# {line}" for line in comments]
    lines += [f"{k} = {_value(v)}" for k, v in doc.items() if k not in tables and k not in arrays]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_value(v)}" for k, v in table.items()]
    for name, items in arrays.items():
        for item in items:
            lines += ["", f"[[{name}]]"] + [f"{k} = {_value(v)}" for k, v in item.items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)
    return text


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, numbers.Integral):  # numpy's numbers too: their repr is not TOML
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")
