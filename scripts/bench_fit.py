"""Benchmark: kerakit's build_model + fit against textbook Keras on digits.

Textbook: Sequential Dense(64, relu) -> Dense(10, softmax),
`model.fit(x, y, epochs=20, batch_size=32, validation_split=0.2)` on NumPy.
kerakit: the same architecture through `build_model` and `fit` (tf.data
pipeline + steps_per_execution). Both alternate in one process; the median of
`--repeats` runs is reported with the test accuracy of each.

Usage: python scripts/bench_fit.py [--repeats 3] [--epochs 20]
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args()

    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import kerakit as kk

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)

    def textbook(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.2, verbose=0)
        seconds = time.perf_counter() - start
        accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
        return seconds, accuracy

    def kerakit_run(seed):
        spec = kk.ProblemSpec(task="multiclass", num_classes=10)
        model = kk.build_model(spec, input_shape=(64,), units=(64,), dropout=0.0, l2=0.0,
                               optimizer="adam", seed=seed)
        start = time.perf_counter()
        kk.fit(model, x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.2,
               verbose=0, seed=seed)
        seconds = time.perf_counter() - start
        return seconds, kk.evaluate(model, x_test, y_test)["accuracy"]

    results = {"textbook": [], "kerakit": []}
    for repeat in range(args.repeats):
        for name, run in (("textbook", textbook), ("kerakit", kerakit_run)):
            results[name].append(run(seed=repeat))
            keras.backend.clear_session()

    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "median_seconds": statistics.median(s for s, _ in runs),
            "mean_test_accuracy": statistics.mean(a for _, a in runs),
        }
    summary["speedup"] = summary["textbook"]["median_seconds"] / summary["kerakit"]["median_seconds"]
    summary["accuracy_gap_points"] = 100 * (
        summary["kerakit"]["mean_test_accuracy"] - summary["textbook"]["mean_test_accuracy"]
    )
    summary["target_met"] = summary["speedup"] >= 2.5 and abs(summary["accuracy_gap_points"]) <= 1.5
    if args.json:
        print(json.dumps(summary))
        return
    print(f"digits, {args.epochs} epochs, batch 32, validation_split 0.2, median of {args.repeats}")
    for name in ("textbook", "kerakit"):
        s = summary[name]
        print(f"  {name:9s} {s['median_seconds']:6.2f} s   test accuracy {s['mean_test_accuracy']:.4f}")
    print(f"  speedup {summary['speedup']:.2f}x (target >= 2.5x), accuracy gap "
          f"{summary['accuracy_gap_points']:+.2f} points (target within 1.5)")
    print("  target met" if summary["target_met"] else "  TARGET MISSED")


if __name__ == "__main__":
    main()
