"""Optuna's TPE as a Keras Tuner oracle: define-by-run asks, kk.tune, resume."""

import sys

import numpy as np
import pytest

import kerakit as kk

optuna = pytest.importorskip("optuna")

# Backend-neutral: CI runs this file on TensorFlow and again on JAX (scripts/dev.py).
pytestmark = pytest.mark.backends



def _oracle(space, direction="min", seed=1):
    import keras_tuner

    from kerakit.tuning.oracles import ORACLES
    from kerakit.tuning.spaces import SearchSpace

    return ORACLES["tpe"](objective=keras_tuner.Objective("val_loss", direction), max_trials=20,
                          seed=seed, hyperparameters=SearchSpace(space).hyperparameters("tpe"),
                          tune_new_entries=False)


def test_tpe_asks_units_i_only_for_layers_the_depth_builds():
    oracle = _oracle({"depth": [1, 2, 3], "units_0": [8, 16], "units_1": [8, 16], "units_2": [8, 16],
                      "learning_rate": (1e-3, 1e-1, "log")})
    for number in range(12):
        values = oracle.populate_space(f"{number:02d}")["values"]
        asked = oracle._asked[f"{number:02d}"]
        assert set(asked.params) == {"depth", "learning_rate"} | {f"units_{i}" for i in range(values["depth"])}
        assert 1e-3 <= values["learning_rate"] <= 1e-1


def test_tpe_respects_keras_tuner_conditional_scopes():
    import keras_tuner

    from kerakit.tuning.oracles import TPEOracle

    hp = keras_tuner.HyperParameters()
    kind = hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["b"]):
        hp.Int("width", 2, 8)
    oracle = TPEOracle(objective=keras_tuner.Objective("loss", "min"), max_trials=10, seed=3,
                       hyperparameters=hp)
    assert kind == "a"
    seen = set()
    for number in range(8):
        oracle.populate_space(str(number))
        params = oracle._asked[str(number)].params
        seen.add(params["kind"])
        assert ("width" in params) == (params["kind"] == "b")
    assert seen == {"a", "b"}


def test_tpe_through_tune_and_its_resume_retells_finished_trials(cancer, tmp_path):
    x, y = cancer
    spec = kk.ProblemSpec(task="binary")
    options = dict(space={"units": [(4,), (8,)], "learning_rate": (1e-3, 1e-1, "log")}, tuner="tpe",
                   epochs=1, patience=None, batch_size=32, refit=False, verbose=0, seed=0,
                   directory=tmp_path)
    first = kk.tune(spec, x, y, max_trials=2, **options)
    assert first.fits == 2 and first.tuner.oracle.__class__.__name__ == "TPEOracle"
    resumed = kk.tune(spec, x, y, max_trials=3, **options)
    assert resumed.fits == 1 and "resuming: 2 done" in resumed.plan
    study = resumed.tuner.oracle.study
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 3  # the two of the first run re-told, and the new one
    scores = sorted(float(v) for v in resumed.trials["val_loss"])
    assert sorted(t.value for t in complete) == pytest.approx(scores)
    assert np.isfinite(resumed.best_score)


def test_a_missing_optuna_names_the_extra(monkeypatch):
    from kerakit.errors import MissingExtraError
    from kerakit.tuning import tpe

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now raises ImportError
    with pytest.raises(MissingExtraError, match=r"kerakit\[optuna\]"):
        tpe.import_optuna()


def test_tpe_does_not_train_a_repeated_candidate_and_stops_when_the_space_is_spent(tmp_path):
    import keras_tuner

    oracle = _oracle({"units": [4, 8], "optimizer": ["adam", "sgd"]})
    oracle._set_project_dir(str(tmp_path), "search")  # what a Tuner does with its oracle
    seen = []
    for number in range(6):
        trial = oracle.create_trial(f"tuner{number}")
        if trial.status != "RUNNING":
            break
        seen.append(tuple(sorted(trial.hyperparameters.values.items())))
        trial.status = "COMPLETED"
        oracle.update_trial(trial.trial_id, {"val_loss": float(number)})
        oracle.end_trial(trial)
    assert len(seen) == len(set(seen)) == 4 and trial.status == keras_tuner.engine.trial.TrialStatus.STOPPED
