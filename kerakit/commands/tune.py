"""`kerakit tune RECIPE [options] [recipe flags]`: search hyperparameters on a recipe's data.

The recipe supplies the data (`data(config)`: train, validation and test
splits and the spec); Keras Tuner searches on the training rows (plus the
validation rows with `--cv`), the best candidate is refit and reported once
on the test split. A recipe may define `search_space(config)` returning a
space (dict, list of dicts or build(hp) function); otherwise the default
space of the body named by --body ("mlp" unless given; "table" is the
TabM-style ensemble of fit_table's default) is searched. The work is
`kerakit.tuning.tune_splits` (callable from Python): numeric features are
standardized inside the model, raw table columns are encoded by the body's
preprocessing and the best network is joined back to it; this command
parses, calls it and prints.

Distributed search uses Keras Tuner's chief/worker mode: start
`kerakit tune RECIPE --chief --oracle-port 8000` and, anywhere that reaches
it, `kerakit tune RECIPE --worker w1 --oracle-ip HOST --oracle-port 8000`
(or set KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT).
Or keep the search in Optuna's storage and run the same command on every
machine: `kerakit tune RECIPE --storage postgresql://user@host/db`.
"""

import argparse
import json
import sys


def add_arguments(parser):
    parser.description = __doc__.split("\n\n")[0].split(": ", 1)[1]
    parser.epilog = ("Recipe config flags (e.g. --smoke, --seed) may follow; "
                     "`kerakit run RECIPE --help` lists them.")
    parser.add_argument("recipe", help="recipe name, or path to a recipe .py file")
    add_options(parser)
    # Everything after the recipe name: our options and the recipe's flags, split in `run`.
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def add_options(parser):
    from kerakit.tuning.options import TUNERS
    from kerakit.tuning.pruning import PRUNERS

    parser.add_argument("--tuner", choices=TUNERS, default="random", help="search algorithm (default: random)")
    parser.add_argument("--pruner", choices=PRUNERS, default=None,
                        help="stop trials that trail the others epoch by epoch (Optuna's pruners; default: none)")
    parser.add_argument("--body", default="mlp",
                        help="body whose default space is searched: mlp, table (the TabM-style "
                             "ensemble of fit_table), cnn, sequence, or a registered name (default: mlp)")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="most candidates (default: 10; grid: all; hyperband: its brackets)")
    parser.add_argument("--cv", type=int, default=None, metavar="K",
                        help="score each candidate by K-fold cross-validation on train+validation rows")
    parser.add_argument("--objective", default="auto", help="metric to optimize (default: the spec's, val_loss)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="most epochs per fit (default: the recipe's epochs, else 50)")
    parser.add_argument("--patience", type=int, default=5, help="early-stopping patience (default: 5)")
    parser.add_argument("--directory", default="tuning", help="folder of searches (default: ./tuning)")
    parser.add_argument("--project-name", default=None, help="search name in the folder (default: the recipe's)")
    parser.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    parser.add_argument("--ensemble", action="store_true", help="with --cv, also save the fold models' average")
    parser.add_argument("--isolate", action="store_true",
                        help="run trials in a child process, renewed every 20 trials (flat memory)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="serve the oracle to workers (distributed search)")
    role.add_argument("--worker", metavar="NAME", default=None, help="run trials for the chief, as worker NAME")
    parser.add_argument("--oracle-ip", default="127.0.0.1", help="chief address (default: 127.0.0.1)")
    parser.add_argument("--oracle-port", type=int, default=8000, help="chief port (default: 8000)")
    parser.add_argument("--worker-timeout", type=float, default=60.0,
                        help="seconds a worker waits for the chief per call (default: 60)")
    parser.add_argument("--chief-timeout", type=float, default=None,
                        help="seconds the chief waits without hearing from a worker (default: no limit)")
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="share the search between workers through Optuna's storage: "
                             "sqlite:///search.db, postgresql://user@host/db, or a journal file path; "
                             "run the same command on every worker")
    parser.add_argument("--tracking-uri", metavar="URI", default=None,
                        help="log the search to MLflow: a parent run, one child run per trial "
                             "(default: $MLFLOW_TRACKING_URI, unset: off)")
    parser.add_argument("--recipes-dir", metavar="DIR", action="append", default=None,
                        help="also look for recipes in DIR (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--json", action="store_true", dest="json_output",
                        help="print only the result as JSON on stdout")


def _config(module, args, rest, name):
    from kerakit import recipes

    config, _ = recipes.parse_args(module, rest, name=name, prog=f"kerakit tune {args.recipe}")
    return config


def _check_counts(args):
    """Refuses nonsense counts by their flag, before anything loads."""
    from kerakit.checks import check_count

    for flag, value, minimum in (("--max-trials", args.max_trials, 1), ("--epochs", args.epochs, 1),
                                 ("--cv", args.cv, 2), ("--patience", args.patience, 0)):
        if value is not None:
            check_count(flag.lstrip("-").replace("-", "_"), value, minimum=minimum, spelled=flag)


def _set_role(args):
    from kerakit.errors import ConfigError
    from kerakit.tuning import distributed

    if args.chief:
        distributed.set_environment("chief", args.oracle_ip, args.oracle_port)
    elif args.worker:
        if "chief" in args.worker:
            raise ConfigError(f"A worker name must not contain 'chief'. Received: --worker {args.worker}")
        distributed.set_environment(args.worker, args.oracle_ip, args.oracle_port)


def tune_recipe(args, rest):
    """Loads the recipe, tunes on its splits (kerakit.tuning.tune_splits); returns the report dict."""
    from kerakit import recipes
    from kerakit.backend import import_tensorflow_quietly
    from kerakit.tuning import Distribution, Refit, tune_splits

    _check_counts(args)  # before TensorFlow loads: a bad count is refused at once
    import_tensorflow_quietly()
    module = recipes.load(args.recipe, args.recipes_dir)
    name = module.__kerakit_recipe__.name
    _set_role(args)
    config = _config(module, args, rest, name)
    data = recipes.check_data(module.data(config), name)
    space = module.search_space(config) if hasattr(module, "search_space") else None
    # --smoke: seconds, as for `kerakit run`: 2 epochs and 2 candidates unless asked otherwise.
    smoke = bool(getattr(config, "smoke", False))
    epochs = args.epochs if args.epochs is not None else (2 if smoke else getattr(config, "epochs", None) or 50)
    max_trials = args.max_trials if args.max_trials is not None else (2 if smoke else "auto")
    quiet = args.quiet or args.json_output
    found = tune_splits(
        data, space, tuner=args.tuner, max_trials=max_trials, cv=args.cv, objective=args.objective,
        epochs=epochs, patience=args.patience, body=args.body, directory=args.directory,
        project_name=args.project_name or name, overwrite=args.overwrite, seed=config.seed,
        refit=Refit(ensemble=args.ensemble), pruner=args.pruner, verbose=0 if quiet else 1,
        storage=args.storage, tracking_uri=args.tracking_uri,
        distribution=Distribution(isolate=args.isolate, worker_timeout=args.worker_timeout,
                                  chief_timeout=args.chief_timeout))
    result = found.search
    report = {"recipe": name, "role": result.role, "directory": str(result.directory),
              "plan": result.plan, "fits": result.fits}
    if result.role == "worker":
        report["trials_run"] = result.trials_run
        return report
    report.update(objective=result.objective, direction=result.direction,
                  best_trial=result.best_trial_id,
                  best_score=result.best_score, best_score_std=result.best_score_std,
                  best_hyperparameters={k: (list(v) if isinstance(v, tuple) else v)
                                        for k, v in result.best_hyperparameters.items()},
                  trials=int(len(result.trials)))
    if found.test_metrics is not None:
        report["test_metrics"] = found.test_metrics
    if found.model_path is not None and found.model_path.name == "table_model.keras":
        report["table_model"] = str(found.model_path)
    if found.ensemble_test_metrics is not None:
        report["ensemble_test_metrics"] = found.ensemble_test_metrics
    report["_trials"] = result.trials
    return report


def print_report(report):
    """Prints what the search found, the best trials first, and where its files are."""
    trials = report.pop("_trials", None)
    if report["role"] == "worker":
        print(f"Worker done: ran trials {report['trials_run']} ({report['fits']} fits).")
        return
    print()
    if trials is not None and len(trials):
        ascending = report["direction"] == "min"
        top = trials.sort_values(report["objective"], ascending=ascending).head(5)
        print("Best trials:")
        print(top.drop(columns=[c for c in ("status", "worker") if c in top]).to_string(index=False))
    print(f"\nBest {report['objective']}: {report['best_score']:.4g} ± {report['best_score_std']:.2g} "
          f"(trial {report['best_trial']}) with {report['best_hyperparameters']}")
    for key, label in (("test_metrics", "refit best model"), ("ensemble_test_metrics", "fold ensemble")):
        if key in report:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in report[key].items() if k != "n")
            print(f"Test ({label}, n={report[key]['n']}): {shown}")
    files = "trials.csv, trials.png, best_model.keras" + (", table_model.keras (takes raw rows)"
                                                         if "table_model" in report else "")
    print(f"Search folder: {report['directory']} ({files})")


def run(args):
    options = argparse.ArgumentParser(prog="kerakit tune", allow_abbrev=False, add_help=False)
    add_options(options)
    args, rest = options.parse_known_args(args.recipe_args, namespace=args)
    import contextlib

    # --json: stdout carries the JSON alone; anything a library prints on the
    # way (Keras Tuner's "Reloading Tuner from ..." on resume) goes to stderr.
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if args.json_output else contextlib.nullcontext()
    with quiet_stdout:
        report = tune_recipe(args, rest)
    if args.json_output:
        report.pop("_trials", None)
        print(json.dumps(report, default=str))
    elif not args.quiet:
        print_report(report)
    return 0
