"""`kerakit promote CANDIDATE --current CURRENT --csv holdout.csv --export DIR`: gate a new version.

    kerakit promote runs/digits/<new> --current runs/digits/<old> --csv holdout.csv \\
        --export models/digits

Both models predict the held-out rows and are compared as `kerakit compare`
does (a paired test per metric). The candidate is exported into the next
version folder of `--export` (TensorFlow Serving picks up the highest
version) only when it is not significantly worse than the current model on
any metric. The verdict is printed; the exit status is 0 when promoted and 3
when refused, so a CI/CD pipeline can gate on it (1 is an error).
"""

import json
import shutil
from pathlib import Path

from kerakit.commands.compare import add_comparison_arguments

REFUSED = 3


def add_arguments(parser):
    parser.add_argument("candidate", metavar="CANDIDATE",
                        help="the new model: a run directory or a .keras file")
    parser.add_argument("--current", required=True, metavar="CURRENT",
                        help="the model in service: a run directory or a .keras file")
    parser.add_argument("--export", required=True, metavar="DIR",
                        help="the model's export base folder; the candidate goes into its next version")
    add_comparison_arguments(parser)


def promote(candidate, current, csv, export_dir, **options):
    """Compares, and exports the candidate when it is not significantly worse.

    Returns `(promoted, comparisons, version_path_or_None)`.
    """
    from kerakit.commands.compare import compare_runs
    from kerakit.serving import export
    from kerakit.serving.drift import REFERENCE_FILE, reference_path

    comparisons, _, _ = compare_runs(current, candidate, csv, **options)
    worse = [c for c in comparisons if c.significant and c.better == "A"]
    if worse:
        return False, comparisons, None
    version = export(candidate, export_dir)
    # Training statistics for drift monitoring travel with the model.
    reference = reference_path(candidate)
    if reference.name == REFERENCE_FILE and reference.is_file():
        target = version / "assets.extra" / REFERENCE_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(reference, target)
    return True, comparisons, version


def run(args):
    promoted, comparisons, version = promote(
        args.candidate, args.current, args.csv, args.export, target=args.target,
        metrics=args.metric, confidence=args.confidence, resamples=args.resamples, seed=args.seed)
    if args.json:
        print(json.dumps({"promoted": promoted, "version": None if version is None else str(version),
                          "comparisons": [c.to_dict() for c in comparisons]}, indent=2))
    else:
        print(f"current:   {args.current}")
        print(f"candidate: {args.candidate}")
        for comparison in comparisons:
            print(f"  {comparison.verdict}")
        if promoted:
            print(f"PROMOTED: the candidate is not significantly worse; exported as version "
                  f"{Path(version).name} in {args.export}")
        else:
            print("REFUSED: the candidate is significantly worse than the current model; nothing "
                  "was exported.")
    return 0 if promoted else REFUSED
