"""`kerakit explain RUN --csv data.csv`: which features the model relies on.

    kerakit explain runs/digits/<id> --csv test.csv --top 10 --plot importance.png

Permutation importance (scikit-learn's `permutation_importance`): each
feature column is shuffled in turn and the drop in the metric is recorded,
most important first. Use held-out rows. Raw-column models are explained per
raw column (a categorical column counts as one feature).
"""

import json

from kerakit.commands.arguments import positive_int


def add_arguments(parser):
    parser.add_argument("model", metavar="RUN", help="a run directory or a .keras file")
    parser.add_argument("--csv", required=True, metavar="PATH",
                        help="held-out rows with the feature columns and the label column")
    parser.add_argument("--target", metavar="COLUMN", default=None,
                        help="label column (default: the run's target, or 'target')")
    from kerakit.analysis.metrics import DEFAULT_METRIC

    defaults = ", ".join(f"{name} for {task}" for task, name in DEFAULT_METRIC.items())
    parser.add_argument("--metric", default="auto",
                        help=f"accuracy, auc, f1, ..., rmse, mae, r2 (default: {defaults})")
    parser.add_argument("--repeats", type=positive_int, default=5, help="shuffles per feature (default 5)")
    parser.add_argument("--top", type=positive_int, default=20, help="features to print and plot (default 20)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="save a bar plot of the importances to this PNG file")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles (default 0)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def explain_run(model, csv, *, target=None, metric="auto", repeats=5, seed=0):
    """Permutation importance of a run's model (or a .keras file) on a CSV's rows.

    A CSV without the run's label or feature columns is refused before the
    model (and TensorFlow) loads.
    """
    from kerakit.backend import import_tensorflow_quietly
    from kerakit.runs import RunModel, check_feature_columns, check_label_columns, read_csv

    frame = read_csv(csv)
    check_label_columns(frame, model, target)
    check_feature_columns(frame, model, target)
    import_tensorflow_quietly()
    from kerakit.analysis import permutation_importance

    run_model = RunModel(model)
    columns = run_model.target_columns(frame, target)
    y = run_model.labels(frame, columns)
    if run_model.table is not None:
        x = frame.drop(columns=columns)  # raw text cells; the model's schema converts them
    else:
        names = [str(c) for c in frame.columns]
        wanted = run_model.feature_names
        if not (wanted and all(str(n) in names for n in wanted)):
            wanted = [c for c in names if c not in columns]
        import pandas as pd

        x = pd.DataFrame(run_model.features(frame, exclude=columns), columns=[str(n) for n in wanted])
    result = permutation_importance(run_model.model, x, y, run_model.spec, metric=metric,
                                    n_repeats=repeats, seed=seed)
    return result, run_model


def run(args):
    result, run_model = explain_run(args.model, args.csv, target=args.target,
                                    metric=args.metric, repeats=args.repeats, seed=args.seed)
    if args.plot:
        from kerakit.atomic import atomic_path
        from kerakit.plots import plot_importance

        with atomic_path(args.plot) as tmp:
            plot_importance(result, top=args.top).savefig(tmp, format="png", dpi=100)
    if args.json:
        print(json.dumps({"model": str(run_model.path), "csv": args.csv, **result.to_dict()},
                         indent=2))
        return 0
    rows = result.rows()[: args.top]
    width = max([len("feature")] + [len(r["feature"]) for r in rows])
    print(f"{run_model.path} on {args.csv}: drop in {result.metric} when a feature is shuffled "
          f"(baseline {result.baseline:.4f}, {args.repeats} repeats)")
    print(f"  {'feature':<{width}}  importance     std")
    for row in rows:
        print(f"  {row['feature']:<{width}}  {row['importance']:>10.4f}  {row['std']:.4f}")
    if len(result.features) > len(rows):
        print(f"  ... {len(result.features) - len(rows)} more (--top N to show them)")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0
