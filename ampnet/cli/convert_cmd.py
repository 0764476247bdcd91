"""``ampnet convert IN -o OUT.json``: any model ampnet can load, written in ampnet's format."""

from pathlib import Path

from ampnet.errors import AmpnetError
from ampnet.formats import load_model, save_model


def add_parser(sub):
    p = sub.add_parser("convert", help="convert a NAM, AIDA-X, RTNeural or GuitarML model to ampnet's format")
    p.add_argument("model", help="model file to read")
    p.add_argument("-o", "--output", required=True, help="ampnet model file to write (.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=run)


def run(args):
    if Path(args.output).resolve() == Path(args.model).resolve():
        raise AmpnetError(f"{args.output}: is the input file; choose another output")
    model = load_model(args.model)
    save_model(model, args.output, overwrite=args.overwrite)
    print(f"{args.model} -> {args.output} ({model.metadata.get('source_format', 'ampnet')}, "
          f"LSTM {model.num_layers} x {model.hidden_size}, {model.sample_rate:g} Hz, "
          f"skip {'on' if model.skip else 'off'})")
