"""`kerakit predict RUN_OR_MODEL --csv in.csv --out out.csv`: predictions for CSV rows."""

import sys


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--csv", required=True, metavar="PATH", help="CSV of raw rows to predict")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="CSV to write: the input rows plus prediction columns (written atomically)")
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="label column(s) to leave out of the features, if the CSV has them")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="decision threshold for binary and multilabel outputs (default: 0.5)")


def run(args):
    import pandas as pd

    from kerakit.errors import KerakitError
    from kerakit.runmodel import RunModel, read_csv, write_csv

    try:
        frame = read_csv(args.csv)
        run_model = RunModel(args.model)
        predictions = run_model.predict_frame(frame, threshold=args.threshold, target=args.target)
    except KerakitError as error:
        print(f"kerakit predict: error: {error}", file=sys.stderr)
        return 1
    clash = [c for c in predictions.columns if c in frame.columns]
    out = pd.concat([frame.drop(columns=clash), predictions], axis=1)
    write_csv(out, args.out)
    print(f"{len(out)} prediction(s) written to {args.out}")
    return 0
