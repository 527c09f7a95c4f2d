"""`kerakit compare RUN_A RUN_B --csv test.csv`: is model B really better than model A?

    kerakit compare runs/digits/<id-a> runs/digits/<id-b> --csv test.csv
    kerakit compare current.keras candidate.keras --csv test.csv --metric accuracy --metric auc

Both models predict the same held-out rows; the difference B − A gets a paired
test (McNemar's exact test for accuracy, a paired bootstrap for any other
metric), a 95 % confidence interval and a plain verdict.
"""

import json


def add_arguments(parser):
    parser.add_argument("run_a", metavar="RUN_A", help="model A (current): a run directory or a .keras file")
    parser.add_argument("run_b", metavar="RUN_B", help="model B (candidate): a run directory or a .keras file")
    add_comparison_arguments(parser)


def add_comparison_arguments(parser):
    """The held-out data and test options `compare` and `promote` share."""
    from kerakit.metrics_registry import KEY_METRICS

    defaults = ", ".join(f"{names[0]} for {task}" for task, names in KEY_METRICS.items())
    parser.add_argument("--csv", required=True, metavar="PATH",
                        help="held-out rows with the feature columns and the label column")
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="label column (default: the runs' target, or 'target')")
    parser.add_argument("--metric", action="append", default=None, metavar="NAME",
                        help="accuracy, auc, f1, precision, recall, log_loss, mse, rmse, mae or r2; "
                             f"repeatable (default: {defaults})")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the interval (default 0.95)")
    parser.add_argument("--resamples", type=int, default=2000,
                        help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _same_outputs(a, b):
    from kerakit.errors import ConfigError

    spec_a, spec_b = a.spec, b.spec
    if spec_b is None:
        return
    if (spec_a.task, spec_a.num_outputs) != (spec_b.task, spec_b.num_outputs):
        raise ConfigError(
            f"The models predict different things: A is {spec_a.task} with "
            f"{spec_a.num_outputs} output(s), B is {spec_b.task} with {spec_b.num_outputs}. "
            f"Compare two models of the same problem."
        )
    names_a, names_b = a.class_names, b.class_names
    if names_a and names_b and [str(n) for n in names_a] != [str(n) for n in names_b]:
        raise ConfigError(
            f"The models' classes differ: A has {names_a}, B has {names_b}. Their outputs "
            f"cannot be compared column by column."
        )


def compare_runs(run_a, run_b, csv, *, target=None, metrics=None, confidence=0.95,
                 resamples=2000, seed=0):
    """Loads two runs (or .keras files), predicts the CSV's rows, and compares them.

    Returns `(comparisons, rows, (a, b))`: one `kerakit.analysis.Comparison`
    per metric, the number of rows, and the two `RunModel`s. A CSV without
    the runs' label or feature columns is refused before the models (and
    TensorFlow) load.
    """
    from kerakit.backend import import_tensorflow_quietly
    from kerakit.runs import RunModel, check_feature_columns, check_label_columns, read_csv

    frame = read_csv(csv)
    # --target, else A's recorded target, else B's.
    if not check_label_columns(frame, run_a, target):
        check_label_columns(frame, run_b, target)
    for run in (run_a, run_b):
        check_feature_columns(frame, run, target)
    import_tensorflow_quietly()
    from kerakit.analysis import compare_predictions

    a, b = RunModel(run_a), RunModel(run_b)
    # --target, else A's recorded target, else B's.
    columns = a.target_columns(frame, target or (None if a.target else b.target))
    y = a.labels(frame, columns)  # also settles A's spec when its file did not record one
    if b.spec is None:
        b.labels(frame, columns)
    _same_outputs(a, b)
    pred_a = a.outputs(frame, exclude=columns)
    pred_b = b.outputs(frame, exclude=columns)
    results = [
        compare_predictions(y, pred_a, pred_b, a.spec, metric=metric, confidence=confidence,
                            resamples=resamples, seed=seed)
        for metric in (metrics or ["auto"])
    ]
    return results, len(frame), (a, b)


def run(args):
    results, rows, (a, b) = compare_runs(
        args.run_a, args.run_b, args.csv, target=args.target, metrics=args.metric,
        confidence=args.confidence, resamples=args.resamples, seed=args.seed)
    if args.json:
        print(json.dumps({"a": str(a.path), "b": str(b.path), "csv": args.csv, "rows": rows,
                          "comparisons": [r.to_dict() for r in results]}, indent=2))
        return 0
    print(f"A (current):   {a.path}")
    print(f"B (candidate): {b.path}")
    print(f"on {rows} rows of {args.csv}")
    for result in results:
        print(f"  {result.verdict}")
    return 0
