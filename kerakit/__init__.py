"""kerakit: problem spec → compiled Keras model, trained fast, tuned, evaluated honestly.

Names are imported on first use (PEP 562), so `import kerakit` and the
`kerakit` command's help stay instant: TensorFlow loads only when a name that
needs it is touched.

Imports run down five floors, never up (import-linter checks it, see
pyproject.toml); modules on one floor may import each other, without cycles:

- apps: `cli`, `commands`, `recipes`;
- features: `data`, `tuning`, `crossval` (cross-validation), `analysis`,
  `plots` (every figure), `active`, `serving`, `distribute`, `finetune`,
  `sklearn`, `runs` (run folders and `RunModel`);
- engines: `training`, `engines` (fit, evaluate, predict);
- core: `checks` (input and argument checks), `saving` (the one safe
  loader), `metadata`, `metrics_registry`, `callbacks`, `builders`, `bodies`,
  `strategies` (tf.distribute strategies and dtype policies), `layers`
  (the custom layers, registered for loading), `atomic` (atomic files), `tabm`;
- base: `errors`, `spec`, `inference` (`infer_spec`), `heads`, `optimizers`,
  `backend`, `_compat` (the third-party internals kerakit relies on).
"""

from kerakit.backend import quiet_tensorflow_logs

__version__ = "0.1.0"

quiet_tensorflow_logs()  # before anything can import TensorFlow

# public name → the public module to import it from
_EXPORTS = {
    "ProblemSpec": "kerakit.spec",
    "infer_spec": "kerakit.inference",
    "validate_labels": "kerakit.spec",
    "build_model": "kerakit.builders",
    "register_body": "kerakit.builders",
    "text_inputs": "kerakit.bodies",
    "read_images": "kerakit.data.images",
    "get_optimizer": "kerakit.optimizers",
    "default_callbacks": "kerakit.callbacks",
    "TerminateOnNaN": "kerakit.callbacks",
    "fit": "kerakit.training",
    "evaluate": "kerakit.training",
    "predict": "kerakit.training",
    "set_seed": "kerakit.training",
    "get_strategy": "kerakit.distribute",
    "split_cpu": "kerakit.distribute",
    "set_default_strategy": "kerakit.distribute",
    "is_chief": "kerakit.distribute",
    "save_on_chief": "kerakit.distribute",
    "launch_local": "kerakit.distribute",
    "export": "kerakit.serving",
    "serve": "kerakit.serving",
    "fit_table": "kerakit.data",
    "read_table": "kerakit.data",
    "split_table": "kerakit.data",
    "infer_schema": "kerakit.data",
    "build_table_model": "kerakit.data",
    "predict_table": "kerakit.data",
    "table_inputs": "kerakit.data",
    "table_metadata": "kerakit.data",
    "save_table_model": "kerakit.data",
    "load_table_model": "kerakit.data",
    "TableSchema": "kerakit.data",
    "TableResult": "kerakit.data",
    "tune": "kerakit.tuning",
    "TuneResult": "kerakit.tuning",
    "SearchSpace": "kerakit.tuning",
    "cross_validate": "kerakit.crossval",
    "make_folds": "kerakit.crossval",
    "CrossValidationResult": "kerakit.crossval",
    "load_model": "kerakit.saving",
    "compare": "kerakit.analysis",
    "compare_predictions": "kerakit.analysis",
    "Comparison": "kerakit.analysis",
    "permutation_importance": "kerakit.analysis",
    "Importance": "kerakit.analysis",
    "plot_importance": "kerakit.plots",
    "ensemble": "kerakit.analysis",
    "ensemble_from_tuner": "kerakit.analysis",
    "finetune": "kerakit.finetune",
    "FineTuned": "kerakit.finetune",
    "Run": "kerakit.runs",
    "RunModel": "kerakit.runs",
    "list_runs": "kerakit.runs",
    "ActiveLearner": "kerakit.active",
    "register_query_strategy": "kerakit.active",
    "simulate": "kerakit.active",
    "Simulation": "kerakit.active",
    "KerasClassifier": "kerakit.sklearn",
    "KerasRegressor": "kerakit.sklearn",
    "KerakitError": "kerakit.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kerakit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
