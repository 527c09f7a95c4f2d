"""`kerakit predict RUN_OR_MODEL --csv in.csv --out out.csv`: predictions for CSV rows.

`--out -` writes the CSV to standard output (and nothing else there).
"""

import sys


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--csv", required=True, metavar="PATH", help="CSV of raw rows to predict")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="CSV to write: the input rows plus prediction columns (written "
                             "atomically); - writes them to standard output")
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="label column(s) to leave out of the features, if the CSV has them")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="decision threshold for binary and multilabel outputs (default: 0.5)")


def run(args):
    import pandas as pd

    from kerakit.backend import import_tensorflow_quietly
    from kerakit.runs import RunModel, check_feature_columns, check_output, read_csv, write_csv

    check_output(args.out)  # before the model loads: the predictions need somewhere to go
    frame = read_csv(args.csv)
    check_feature_columns(frame, args.model, args.target)  # a wrong CSV is refused before TensorFlow loads
    import_tensorflow_quietly()
    run_model = RunModel(args.model)
    predictions = run_model.predict_frame(frame, threshold=args.threshold, target=args.target)
    clash = [c for c in predictions.columns if c in frame.columns]
    out = pd.concat([frame.drop(columns=clash), predictions], axis=1)
    write_csv(out, args.out)
    if args.out != "-":
        print(f"{len(out)} prediction(s) written to {args.out}")
    else:
        print(f"{len(out)} prediction(s) written to standard output", file=sys.stderr)
    return 0
