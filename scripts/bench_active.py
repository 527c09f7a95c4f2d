"""Benchmark: active learning on digits — labels to reach 93 % test accuracy, and query time.

1. Labels needed. `kerakit.simulate` on digits (pool 1,077 rows, validation
   270, test 450; stratified split, seed 0): 20 random initial labels, 10 more
   per round, up to `--budget`, for random sampling and each uncertainty
   strategy, over `--seeds` seeds. For each strategy: labels at which the test
   accuracy first reaches `--target`, mean over seeds. The headline strategy is
   the one that needs the fewest labels on the *validation* curve, so the test
   figure is not picked by looking at the test set. Target: ≤ 0.6× random's.
2. Query time over a 1,500-row pool, each strategy, median of `--repeats`.
   Monte-Carlo dropout (BALD, 20 passes) runs as one batched call of the model
   on the tiled pool; side by side, the same 20 passes as a Python loop of
   eager `model(x, training=True)` calls, and a loop of 20 `model.predict`.

Usage: python scripts/bench_active.py [--seeds 3] [--budget 500] [--target 0.93] [--json]
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

UNCERTAINTY = ("least_confidence", "margin", "entropy", "bald", "diverse")


def _median_seconds(fn, repeats):
    fn()  # warm-up: tracing is paid once per model, not per query
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def query_times(repeats):
    import numpy as np
    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit import active

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    learner = kk.ActiveLearner(spec, "bald", x_labeled=x[1500:1600], y_labeled=y[1500:1600], seed=0)
    model = learner.model_
    pool = x[:1500]
    rows = {}
    for name in ("random",) + UNCERTAINTY:
        strategy = active.get_strategy(name)
        options = {"seed": 0} if "seed" in strategy.options else {}
        rows[name] = _median_seconds(lambda s=strategy, o=options: s(model, pool, 10, **o), repeats)
    passes = 20
    rows["mc_dropout_20_batched"] = _median_seconds(lambda: active.predictive_samples(model, pool, passes), repeats)
    rows["mc_dropout_20_eager_loop"] = _median_seconds(
        lambda: np.stack([np.asarray(model(pool, training=True)) for _ in range(passes)]), repeats)
    rows["predict_20_loop"] = _median_seconds(
        lambda: [model.predict(pool, verbose=0) for _ in range(passes)], repeats)
    return rows


def labels_needed(seeds, budget, target, strategies):
    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit.recipes import split_data

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    data = split_data(x, digits.target, test_size=0.25, val_size=0.15, seed=0)
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)

    def progress(strategy, seed, labels, value):
        if labels == budget:
            print(f"  {strategy:<17} seed {seed}: done ({value:.3f} validation accuracy at {labels} labels)",
                  flush=True)

    start = time.perf_counter()
    result = kk.simulate(spec, data["x_train"], data["y_train"], data["x_val"], data["y_val"],
                         x_test=data["x_test"], y_test=data["y_test"], strategies=strategies,
                         initial=20, budget=budget, step=10, seeds=list(range(seeds)),
                         progress=progress)
    seconds = time.perf_counter() - start
    test = result.labels_to_reach(target, split="test")
    val = result.labels_to_reach(target, split="val")

    def val_key(name):
        entry = val[name]
        return (entry["mean"] is None, -entry["reached"], entry["mean"] or 0.0)

    best = min(strategies, key=val_key)
    random_mean = test["random"]["mean"]
    best_mean = test[best]["mean"]
    return {
        "target": target, "budget": budget, "seeds": seeds, "seconds": round(seconds, 1),
        "test_labels": test, "val_labels": val, "best_by_validation": best,
        "ratio_best_to_random": (best_mean / random_mean) if best_mean and random_mean else None,
        "summary": result.summary(targets=[target], split="test"),
        "final_test_accuracy": {n: float(result.mean_curve(n, "test")[-1]) for n in result.strategies},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--target", type=float, default=0.93)
    parser.add_argument("--strategies", nargs="+", default=list(UNCERTAINTY))
    parser.add_argument("--repeats", type=int, default=7, help="repeats of each query timing")
    parser.add_argument("--skip-labels", action="store_true", help="time the queries only")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()

    report = {"query_seconds_1500_rows": query_times(args.repeats)}
    if not args.skip_labels:
        report["labels"] = labels_needed(args.seeds, args.budget, args.target, args.strategies)
    if args.json:
        print(json.dumps(report, indent=2))
        return

    times = report["query_seconds_1500_rows"]
    print("\nOne query of 10 rows over a 1,500-row pool (median seconds):")
    for name, seconds in times.items():
        print(f"  {name:<26} {seconds * 1000:8.1f} ms")
    print(f"  batched MC dropout is {times['mc_dropout_20_eager_loop'] / times['mc_dropout_20_batched']:.1f}x "
          f"faster than an eager loop of 20 passes and "
          f"{times['predict_20_loop'] / times['mc_dropout_20_batched']:.1f}x faster than 20 predict calls")
    if "labels" in report:
        labels = report["labels"]
        print(f"\nLabels to reach {labels['target']:.0%} test accuracy (mean of {labels['seeds']} seeds; "
              f"{labels['seconds']:.0f} s):")
        for name, entry in labels["test_labels"].items():
            shown = f"{entry['mean']:.0f}" if entry["mean"] is not None else f">{labels['budget']}"
            print(f"  {name:<17} {shown:>5}   per seed {entry['per_seed']}   "
                  f"final accuracy {labels['final_test_accuracy'][name]:.3f}")
        ratio = labels["ratio_best_to_random"]
        verdict = ("target met" if ratio is not None and ratio <= 0.6 else "target NOT met")
        shown = f"{ratio:.2f}x" if ratio is not None else "not computable (a mean is missing)"
        print(f"  best by validation: {labels['best_by_validation']}: {shown} random's labels "
              f"(target <= 0.6x): {verdict}")
        for line in labels["summary"]:
            print("  " + line)


if __name__ == "__main__":
    main()
