"""Quality floors: run the full built-in recipes and check their held-out test metrics.

    python scripts/check_quality.py [--seeds 5] [--recipes digits wine ...]

Each recipe runs at its defaults (full data, full epochs, early stopping) with
seeds 0..N-1; the seed picks the split as well as the weights, so the spread
shows how much one small test split moves the figure. A floor holds when the
mean over the seeds reaches it; the default command (seed 0) is shown too.
The diabetes test split has 89 patients: there one split can move R² by
±0.1, and a linear regression on the same split is printed for reference.
Run directories go to a temporary folder. Prints a Markdown table for the
README and exits 1 if a floor is missed.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# recipe → (metric, floor) from issues 4 and 16.
FLOORS = {
    "digits": ("accuracy", 0.96),
    "breast-cancer": ("accuracy", 0.95),
    "wine": ("accuracy", 0.94),
    "diabetes": ("r2", 0.40),
    # issue 16: images and text
    "digits-cnn": ("accuracy", 0.985),
    "images": ("accuracy", 0.95),
    "text": ("accuracy", 0.95),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per recipe (default: 5)")
    parser.add_argument("--recipes", nargs="+", default=list(FLOORS), choices=list(FLOORS))
    args = parser.parse_args(argv)

    from kerakit import recipes

    rows, ok = [], True
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in args.recipes:
            metric, floor = FLOORS[name]
            module = recipes.load(name)
            values, extra, start = [], [], time.time()
            for seed in range(args.seeds):
                result = recipes.execute(module, recipes.make_config(module, seed=seed),
                                         runs_dir=runs_dir, quiet=True)
                values.append(result["metrics"][metric])
                baseline = Path(result["run_dir"]) / "baseline.json"
                if baseline.is_file():
                    extra.append(json.loads(baseline.read_text())["test_r2"])
                print(f"{name} seed {seed}: {metric} {values[-1]:.4f}", file=sys.stderr, flush=True)
            mean = statistics.mean(values)
            passed = mean >= floor
            ok &= passed
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            note = (f"linear regression, same splits: mean {statistics.mean(extra):.3f}"
                    if extra else "")
            rows.append((name, metric, floor, values, mean, spread, passed, note,
                         (time.time() - start) / len(values)))
    print("| recipe | metric | floor | seed 0 (default) | mean over seeds | std | min | held | "
          "s/run | note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, metric, floor, values, mean, spread, passed, note, seconds in rows:
        print(f"| {name} | {metric} | ≥ {floor:.2f} | {values[0]:.4f} | {mean:.4f} | {spread:.4f} | "
              f"{min(values):.4f} | {'yes' if passed else 'NO'} | {seconds:.1f} | {note} |")
    print(f"\nseeds 0..{args.seeds - 1}; each seed picks the split and the initial weights.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
