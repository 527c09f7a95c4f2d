"""Benchmark: kerakit.tune against textbook Keras Tuner, and memory over a 100-trial search.

Throughput: the same search space, data (digits), epochs and oracle seed —
so both draw the same candidates — searched by textbook Keras Tuner
(`RandomSearch` over a `build(hp)` function, `model.fit` on NumPy arrays with
`validation_data`) and by `kerakit.tune` (no early stopping, so both train
every epoch). Reported: trials per minute, best validation accuracy, and the
test accuracy of each search's best model. Target: >= 2x the trials per
minute at an equal best score (within 1 point of accuracy: the candidates
are the same, the shuffles are not).

Memory: a 100-trial search (tiny data, 1 epoch) with `isolate=True` and,
for contrast, in-process; each in a fresh process. Peak RSS growth = the
search process's peak RSS minus its RSS just before the search, plus, with
isolation, the largest growth of a trial process over its life. Target:
< 150 MB with isolation.

Oracles (`--compare-oracles`, issue 17): random, Bayesian (Keras Tuner's
Gaussian process) and TPE (Optuna, `tuner="tpe"`) on the same conditional
space (depth 1-3, units_i read only when depth > i), data and budgets: the
best validation score after 10 and 25 trials (val_accuracy on digits,
val_loss = MSE of the standardized target on load_diabetes), mean over
seeds. Few epochs and small models, so it runs on CPU in minutes.

Pruning (`--compare-pruning`): TPE with the median pruner against TPE
without, same space (ORACLE_SPACE), budget, epochs and seeds, on digits
(val_accuracy) and load_diabetes (val_loss, a regression table). Reported
per dataset: wall time and fits of each, the time ratio (target <= 0.6) and
the best validation score of each (mean over seeds; "within noise" is judged
against the spread over seeds, which is printed too).

Usage: python scripts/bench_tune.py [--trials 10] [--epochs 10] [--repeats 1]
       [--memory-trials 100] [--skip-memory] [--json]
       python scripts/bench_tune.py --compare-oracles [--budgets 10 25] [--seeds 2]
       [--oracle-epochs 3] [--log runs.jsonl] [--json]
       python scripts/bench_tune.py --compare-pruning [--pruning-trials 20] [--seeds 2]
       [--pruning-epochs 40] [--json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPACE = {  # dict order = the order build(hp) below declares them, so the oracle draws alike
    "depth": [1, 2],
    "units_0": [32, 64, 128],
    "units_1": [32, 64, 128],
    "dropout": [0.0, 0.2, 0.4],
    "optimizer": ["adam", "rmsprop"],
    "learning_rate": (1e-4, 1e-2, "log"),
    "l2": [0.0],
}


def textbook_build(hp):
    import keras

    depth = hp.Choice("depth", [1, 2])
    units = [hp.Choice("units_0", [32, 64, 128]), hp.Choice("units_1", [32, 64, 128])]
    dropout = hp.Choice("dropout", [0.0, 0.2, 0.4])
    optimizer = hp.Choice("optimizer", ["adam", "rmsprop"])
    rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    hp.Choice("l2", [0.0])
    model = keras.Sequential([keras.Input((64,))])
    for i in range(depth):
        model.add(keras.layers.Dense(units[i], activation="relu"))
        if dropout:
            model.add(keras.layers.Dropout(dropout))
    model.add(keras.layers.Dense(10, activation="softmax"))
    opt = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[optimizer]
    model.compile(optimizer=opt(learning_rate=rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.25, random_state=0,
                                                      stratify=y_rest)
    return x_train, y_train, x_val, y_val, x_test, y_test


def throughput(trials, epochs, seed, workdir):
    import keras_tuner
    import numpy as np

    import kerakit as kk
    from kerakit.tuning import CrossValidation

    x_train, y_train, x_val, y_val, x_test, y_test = digits()
    out = {}

    tuner = keras_tuner.RandomSearch(textbook_build, objective="val_accuracy", max_trials=trials,
                                     seed=seed + 1, directory=workdir, project_name=f"textbook{seed}",
                                     overwrite=True)
    start = time.perf_counter()
    tuner.search(x_train, y_train, epochs=epochs, batch_size=32, validation_data=(x_val, y_val),
                 verbose=0)
    seconds = time.perf_counter() - start
    best = tuner.oracle.get_best_trials(1)[0]
    model = tuner.get_best_models(1)[0]
    out["textbook"] = {
        "seconds": seconds, "trials_per_minute": 60 * trials / seconds, "best_val_accuracy": best.score,
        "test_accuracy": float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test)),
        "candidates": [sorted(t.hyperparameters.values.items()) for t in tuner.oracle.trials.values()],
    }

    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    start = time.perf_counter()
    result = kk.tune(spec, x_train, y_train, SPACE, tuner="random", max_trials=trials,
                     objective="val_accuracy", cv=CrossValidation(validation_data=(x_val, y_val)), epochs=epochs,
                     patience=None, batch_size=32, seed=seed, directory=workdir,
                     project_name=f"kerakit{seed}", overwrite=True, refit=False, verbose=0)
    seconds = time.perf_counter() - start
    # The test score of the best candidate as searched (trained on the same rows, no refit).
    best_values = result.best_hyperparameters
    model = kk.build_model(spec, input_shape=(64,), units=tuple(
        best_values[f"units_{i}"] for i in range(best_values["depth"])), dropout=best_values["dropout"],
        l2=0.0, optimizer=best_values["optimizer"], learning_rate=best_values["learning_rate"], seed=seed)
    kk.fit(model, x_train, y_train, epochs=epochs, batch_size=32, seed=seed, verbose=0)
    out["kerakit"] = {
        "seconds": seconds, "trials_per_minute": 60 * trials / seconds,
        "best_val_accuracy": result.best_score,
        "test_accuracy": kk.evaluate(model, x_test, y_test)["accuracy"],
        "candidates": [sorted(t.hyperparameters.values.items())
                       for t in result.tuner.oracle.trials.values()],
    }
    same = out["textbook"].pop("candidates") == out["kerakit"].pop("candidates")
    out["same_candidates"] = same
    return out


ORACLE_SPACE = {
    "depth": [1, 2, 3],
    "units_0": [8, 16, 32, 64],
    "units_1": [8, 16, 32, 64],
    "units_2": [8, 16, 32, 64],
    "dropout": (0.0, 0.5),
    "optimizer": ["adam", "rmsprop", "sgd"],
    "learning_rate": (1e-4, 1e-1, "log"),
}


def diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    y = ((y - y.mean()) / y.std()).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0)
    return x_train, y_train, x_val, y_val


def compare_oracles(budgets, seeds, epochs, workdir, log=None):
    """Best validation score after each budget, per dataset and tuner, mean over seeds.

    Seeds run outermost, so an interrupted run still has whole seeds; with
    `log`, each finished search is appended to that file as one JSON line.
    """
    import kerakit as kk
    from kerakit.tuning import CrossValidation

    x_train, y_train, x_val, y_val, _, _ = digits()
    tables = {
        "digits": (kk.ProblemSpec(task="multiclass", num_classes=10), (x_train, y_train, x_val, y_val),
                   "val_accuracy", max),
        "diabetes": (kk.ProblemSpec(task="regression"), diabetes(), "val_loss", min),
    }
    runs = []
    for seed in range(seeds):
        for data_name, (spec, (xt, yt, xv, yv), objective, best_of) in tables.items():
            for tuner in ("random", "bayesian", "tpe"):
                start = time.perf_counter()
                result = kk.tune(spec, xt, yt, ORACLE_SPACE, tuner=tuner, max_trials=max(budgets),
                                 objective=objective, cv=CrossValidation(validation_data=(xv, yv)),
                                 epochs=epochs,
                                 patience=None, batch_size=64, seed=seed, directory=workdir,
                                 project_name=f"{data_name}-{tuner}-{seed}", overwrite=True,
                                 refit=False, verbose=0)
                trials = sorted(result.tuner.oracle.trials.items())
                scores = [t.score for _, t in trials if t.status == "COMPLETED" and t.score is not None]
                run = {"data": data_name, "objective": objective, "tuner": tuner, "seed": seed,
                       "best_after": {str(b): best_of(scores[:b]) for b in budgets},
                       "seconds": time.perf_counter() - start}
                runs.append(run)
                if log:
                    with open(log, "a") as handle:
                        handle.write(json.dumps(run) + "\n")
    return summarize(runs, budgets)


def summarize(runs, budgets):
    out = {}
    for run in runs:
        rows = out.setdefault(run["data"], {"objective": run["objective"]})
        rows.setdefault(run["tuner"], {"runs": []})["runs"].append(run)
    for rows in out.values():
        for tuner in ("random", "bayesian", "tpe"):
            if tuner not in rows:
                continue
            done = rows[tuner].pop("runs")
            rows[tuner] = {"best_after": {str(b): sum(r["best_after"][str(b)] for r in done) / len(done)
                                          for b in budgets},
                           "per_seed": [[r["best_after"][str(b)] for b in budgets] for r in done],
                           "seeds": len(done), "seconds": sum(r["seconds"] for r in done)}
    return out


def compare_pruning(trials, seeds, epochs, workdir):
    """TPE with pruner="median" against no pruner: time, fits and best score per dataset."""
    import numpy as np

    import kerakit as kk
    from kerakit.tuning import CrossValidation

    x_train, y_train, x_val, y_val, _, _ = digits()
    tables = {
        "digits": (kk.ProblemSpec(task="multiclass", num_classes=10), (x_train, y_train, x_val, y_val),
                   "val_accuracy"),
        "diabetes": (kk.ProblemSpec(task="regression"), diabetes(), "val_loss"),
    }
    summary = {}
    for name, (spec, (xt, yt, xv, yv), objective) in tables.items():
        runs = {"none": [], "median": []}
        # Warm up (imports, first traces), so the first timed search does not pay for them.
        kk.tune(spec, xt, yt, ORACLE_SPACE, tuner="tpe", max_trials=1, objective=objective,
                cv=CrossValidation(validation_data=(xv, yv)), epochs=1, directory=workdir,
                project_name=f"{name}-warmup", overwrite=True, refit=False, verbose=0)
        for seed in range(seeds):
            for pruner in ("none", "median"):
                start = time.perf_counter()
                result = kk.tune(spec, xt, yt, ORACLE_SPACE, tuner="tpe", max_trials=trials,
                                 objective=objective, cv=CrossValidation(validation_data=(xv, yv)),
                                 epochs=epochs, patience=None, batch_size=64, seed=seed,
                                 pruner=None if pruner == "none" else pruner, directory=workdir,
                                 project_name=f"{name}-{pruner}-{seed}", overwrite=True, refit=False,
                                 verbose=0)
                runs[pruner].append({"seconds": time.perf_counter() - start, "fits": result.fits,
                                     "best": result.best_score,
                                     "pruned": int((result.trials["status"] == "PRUNED").sum())})
        row = {pruner: {key: float(np.mean([r[key] for r in rs])) for key in rs[0]}
               for pruner, rs in runs.items()}
        for pruner, rs in runs.items():
            row[pruner]["best_std_over_seeds"] = float(np.std([r["best"] for r in rs]))
        row["time_ratio"] = row["median"]["seconds"] / row["none"]["seconds"]
        row["objective"] = objective
        summary[name] = row
    return summary


def print_pruning(summary, trials, seeds, epochs):
    print(f"TPE, {trials} trials x {epochs} epochs, mean over {seeds} seed(s): median pruner vs none")
    for name, row in summary.items():
        for pruner in ("none", "median"):
            r = row[pruner]
            print(f"  {name:9s} {pruner:7s} {r['seconds']:7.1f} s  {r['fits']:5.1f} fits  "
                  f"{r['pruned']:4.1f} pruned  best {row['objective']} {r['best']:.4f} "
                  f"(± {r['best_std_over_seeds']:.4f} over seeds)")
        print(f"  {name:9s} time ratio {row['time_ratio']:.2f} (target <= 0.6)")


def print_oracles(summary, budgets, seeds, epochs):
    print(f"oracles: best validation score after {budgets} trials, mean over {seeds} seeds, "
          f"{epochs} epochs per trial")
    for data_name, rows in summary.items():
        objective = rows["objective"]
        print(f"  {data_name} ({objective}, {'higher' if objective == 'val_accuracy' else 'lower'} is better)")
        for tuner in ("random", "bayesian", "tpe"):
            if tuner not in rows:
                continue
            r = rows[tuner]
            figures = "  ".join(f"after {b}: {r['best_after'][str(b)]:.4f}" for b in budgets)
            print(f"    {tuner:9s} {figures}  ({r['seconds']:.0f} s)")


def memory_run(trials, isolate, workdir, scale=False):
    """One search in this (fresh) process; returns the RSS figures in MB.

    `scale`: the search kept in a SQLite Optuna storage and tracked in a
    SQLite MLflow store (a parent run and one child run per trial).
    """
    import glob

    from sklearn.datasets import load_digits

    import kerakit as kk
    from kerakit.tuning import Distribution
    from kerakit.tuning.trials import memory_mb

    x, y = load_digits(return_X_y=True)
    x, y = (x[:200] / 16).astype("float32"), y[:200]
    spec = kk.ProblemSpec(task="multiclass", num_classes=10)
    space = {"units": [8, 16, 32, 64], "dropout": [0.0, 0.1, 0.2], "learning_rate": (1e-3, 1e-2, "log")}
    extra = {}
    if scale:
        extra = {"storage": f"sqlite:///{os.path.join(workdir, 'search.db')}",
                 "tracking_uri": f"sqlite:///{os.path.join(workdir, 'mlflow.db')}"}
    # Warm up: TensorFlow, Keras, one model (and Optuna, MLflow and their stores),
    # so the baseline is a ready process.
    kk.tune(spec, x, y, space, max_trials=1, epochs=1, directory=workdir, project_name="warmup",
            overwrite=not scale, verbose=0, **extra)
    before, _ = memory_mb()
    start = time.perf_counter()
    kk.tune(spec, x, y, space, max_trials=trials, epochs=1, directory=workdir, project_name="search",
            overwrite=not scale, verbose=0, distribution=Distribution(isolate=isolate), refit=False, **extra)
    seconds = time.perf_counter() - start
    after, peak = memory_mb()
    child = 0.0
    if isolate:
        infos = [json.load(open(p)) for p in glob.glob(os.path.join(workdir, "search", "trial_*",
                                                                     "kerakit_trial.json"))]
        by_pid = {}
        for info in infos:
            by_pid.setdefault(info["pid"], []).append(info)
        # Each trial process: its peak minus its RSS after its first trial.
        child = max(max(i["peak_rss_mb"] for i in runs) - min(i["rss_mb"] for i in runs)
                    for runs in by_pid.values())
        child_processes = len(by_pid)
    else:
        child_processes = 0
    return {"trials": trials, "isolate": isolate, "scale": scale, "seconds": seconds, "rss_before_mb": before,
            "rss_after_mb": after, "search_process_growth_mb": peak - before,
            "trial_process_growth_mb": child, "trial_processes": child_processes,
            "peak_rss_growth_mb": (peak - before) + child}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--memory-trials", type=int, default=100)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    parser.add_argument("--memory-run", choices=("isolate", "inprocess", "scale"), help=argparse.SUPPRESS)
    parser.add_argument("--compare-oracles", action="store_true",
                        help="random vs bayesian vs tpe: best score after each budget")
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 25])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--oracle-epochs", type=int, default=3)
    parser.add_argument("--log", default=None, help="append each finished search to this JSON-lines file")
    parser.add_argument("--compare-pruning", action="store_true",
                        help="TPE with the median pruner vs without: time and best score")
    parser.add_argument("--pruning-trials", type=int, default=20)
    parser.add_argument("--pruning-epochs", type=int, default=40)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench_tune_")

    if args.compare_pruning:
        summary = compare_pruning(args.pruning_trials, args.seeds, args.pruning_epochs, workdir)
        if args.json:
            print(json.dumps(summary))
        else:
            print_pruning(summary, args.pruning_trials, args.seeds, args.pruning_epochs)
        return

    if args.compare_oracles:
        summary = compare_oracles(sorted(args.budgets), args.seeds, args.oracle_epochs, workdir, args.log)
        if args.json:
            print(json.dumps(summary))
        else:
            print_oracles(summary, sorted(args.budgets), args.seeds, args.oracle_epochs)
        return

    if args.memory_run:
        print(json.dumps(memory_run(args.memory_trials, args.memory_run != "inprocess", workdir,
                                    scale=args.memory_run == "scale")))
        return

    summary = {"throughput": [throughput(args.trials, args.epochs, seed, workdir)
                              for seed in range(args.repeats)]}
    runs = summary["throughput"]
    textbook = sum(r["textbook"]["trials_per_minute"] for r in runs) / len(runs)
    ours = sum(r["kerakit"]["trials_per_minute"] for r in runs) / len(runs)
    gap = sum(r["kerakit"]["best_val_accuracy"] - r["textbook"]["best_val_accuracy"] for r in runs) / len(runs)
    summary["speedup"] = ours / textbook
    summary["best_val_accuracy_gap_points"] = 100 * gap
    summary["throughput_target_met"] = summary["speedup"] >= 2 and summary["best_val_accuracy_gap_points"] >= -1
    if not args.skip_memory:
        summary["memory"] = {}
        for mode in ("isolate", "inprocess", "scale"):
            done = subprocess.run([sys.executable, __file__, "--memory-run", mode, "--memory-trials",
                                   str(args.memory_trials)], capture_output=True, text=True, check=True)
            summary["memory"][mode] = json.loads(done.stdout.strip().splitlines()[-1])
        summary["memory_target_met"] = all(summary["memory"][mode]["peak_rss_growth_mb"] < 150
                                           for mode in ("isolate", "scale"))
    if args.json:
        print(json.dumps(summary))
        return
    print(f"digits, {args.trials} random-search trials, {args.epochs} epochs each, batch 32, "
          f"same space and oracle seed ({args.repeats} repeat(s))")
    for r in runs:
        for name in ("textbook", "kerakit"):
            s = r[name]
            print(f"  {name:9s} {s['seconds']:7.1f} s  {s['trials_per_minute']:5.1f} trials/min  "
                  f"best val_accuracy {s['best_val_accuracy']:.4f}  test accuracy {s['test_accuracy']:.4f}")
        print(f"  same candidates drawn: {r['same_candidates']}")
    print(f"  speedup {summary['speedup']:.2f}x (target >= 2x), best val_accuracy gap "
          f"{summary['best_val_accuracy_gap_points']:+.2f} points (target >= -1)")
    if "memory" in summary:
        for mode, m in summary["memory"].items():
            print(f"  {args.memory_trials} trials {mode:9s}: peak RSS growth {m['peak_rss_growth_mb']:6.1f} MB "
                  f"(search process {m['search_process_growth_mb']:.1f}, trial processes "
                  f"{m['trial_process_growth_mb']:.1f} over {m['trial_processes']}), {m['seconds']:.0f} s")
        print(f"  memory target (< 150 MB with isolation, with and without storage + tracking) {'met' if summary['memory_target_met'] else 'MISSED'}")
    met = summary["throughput_target_met"] and summary.get("memory_target_met", True)
    print("  targets met" if met else "  TARGET MISSED")


if __name__ == "__main__":
    main()
