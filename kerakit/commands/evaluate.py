"""`kerakit evaluate RUN_OR_MODEL --csv test.csv`: held-out metrics of a trained model on CSV rows."""

import json


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN_OR_MODEL", help="a run directory or a .keras file")
    parser.add_argument("--csv", required=True, metavar="PATH",
                        help="CSV with the feature columns and the label column(s)")
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="label column(s), comma-separated (default: the run's target, or 'target')")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="decision threshold for binary and multilabel outputs (default: 0.5)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run(args):
    from kerakit.backend import import_tensorflow_quietly
    from kerakit.runs import RunModel, check_feature_columns, check_label_columns, read_csv

    frame = read_csv(args.csv)
    # A wrong CSV is refused before TensorFlow loads.
    check_label_columns(frame, args.model, args.target)
    check_feature_columns(frame, args.model, args.target)
    import_tensorflow_quietly()
    run_model = RunModel(args.model)
    report = run_model.evaluate(frame, target=args.target, threshold=args.threshold)
    if args.json:
        print(json.dumps({"model": str(run_model.path), "csv": args.csv, "metrics": report}, indent=2))
        return 0
    width = max(len(k) for k in report)
    print(f"{run_model.path} on {args.csv}")
    for key, value in report.items():
        text = str(int(value)) if key == "n" else f"{value:.4f}"
        print(f"  {key:<{width}}  {text}")
    return 0
