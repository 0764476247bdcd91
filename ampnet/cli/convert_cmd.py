"""``ampnet convert IN -o OUT [--to ampnet|nam|aidax]``: between ampnet's format and the
formats of other players (import: any format ampnet loads; export: NAM, AIDA-X)."""

import json
from pathlib import Path

from ampnet.errors import AmpnetError
from ampnet.formats import load_model, save_model
from ampnet.io.files import write_text_atomic

SUFFIXES = {".nam": "nam", ".aidax": "aidax"}
ALLOWED_SUFFIXES = {"ampnet": (".json",), "nam": (".nam",), "aidax": (".aidax", ".json")}


def add_parser(sub):
    p = sub.add_parser("convert", help="convert models: NAM/AIDA-X/RTNeural/GuitarML -> ampnet, "
                                       "ampnet -> NAM or AIDA-X",
                       description="Convert a model. Reads every format ampnet loads; writes ampnet "
                                   "JSON, NAM .nam (for the NAM plugin) or AIDA-X JSON.")
    p.add_argument("model", help="model file to read")
    p.add_argument("-o", "--output", required=True, help="file to write")
    p.add_argument("--to", choices=["ampnet", "nam", "aidax"],
                   help="output format (default: from the output's extension, .nam -> nam, "
                        ".aidax -> aidax, else ampnet)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=run)


def run(args):
    output = Path(args.output)
    if output.resolve() == Path(args.model).resolve():
        raise AmpnetError(f"{args.output}: is the input file; choose another output")
    target = args.to or SUFFIXES.get(output.suffix.lower(), "ampnet")
    if output.suffix.lower() not in ALLOWED_SUFFIXES[target]:
        raise AmpnetError(f"{output}: {target} model files are named "
                          f"{' or '.join(ALLOWED_SUFFIXES[target])}, not "
                          f"{output.suffix or 'without an extension'}; choose e.g. "
                          f"{output.with_suffix(ALLOWED_SUFFIXES[target][0]).name}")
    model = load_model(args.model)
    shape = f"{model.architecture}, {model.sample_rate:g} Hz, skip {'on' if model.skip else 'off'}"
    if target == "ampnet":
        save_model(model, output, overwrite=args.overwrite)
        print(f"{args.model} -> {output} ({model.metadata.get('source_format', 'ampnet')} -> ampnet, {shape})")
        return 0
    from ampnet.formats import export
    from ampnet.host.loudness import reference_guitar

    if output.exists() and not args.overwrite:
        raise AmpnetError(f"{output}: already exists; pass --overwrite to replace it")
    try:
        if target == "nam":
            doc, notes = export.to_nam(model), []
        else:
            probe = reference_guitar(2048 / model.sample_rate, int(model.sample_rate), level=0.3)
            doc, notes = export.to_aidax(model, probe)
    except export.ExportError as err:
        raise AmpnetError(f"{args.model}: cannot write {target}: {err}") from None
    write_text_atomic(output, json.dumps(doc) + "\n")
    print(f"{args.model} -> {output} ({target}, {shape})")
    for note in notes:
        print(f"  note: {note}")
    return 0
