"""Strategy names, batch sizes, TF_CONFIG, chief roles, dtype policies, and their refusals off TensorFlow."""

import json

import keras
import numpy as np
import pytest

import kerakit as kk
from kerakit import distribute
from kerakit.errors import ConfigError, UnknownNameError

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute is TensorFlow's")


# Strategy names, batch sizes, TF_CONFIG: no TensorFlow work needed -------------


def test_unknown_strategy_name_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="Did you mean 'mirrored'"):
        kk.get_strategy("mirored")


def test_strategy_of_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="tf.distribute.Strategy or one of"):
        kk.get_strategy(3)


def test_multiworker_without_tf_config_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs the TF_CONFIG environment variable"):
        kk.get_strategy("multiworker")


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{not json", "must be JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "must be JSON"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "is not in its cluster"),
    ],
)
def test_bad_tf_config_is_refused(monkeypatch, raw, message):
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError, match=message):
        distribute.read_tf_config(required=True)


@pytest.mark.parametrize(
    "cluster, task, chief",
    [
        ({"worker": ["a:1", "b:1"]}, ("worker", 0), True),
        ({"worker": ["a:1", "b:1"]}, ("worker", 1), False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0), True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0), False),
    ],
)
def test_is_chief_follows_tf_config(monkeypatch, cluster, task, chief):
    config = {"cluster": cluster, "task": {"type": task[0], "index": task[1]}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert kk.is_chief() is chief


class _Replicas:
    num_replicas_in_sync = 4


def test_global_batch_must_split_evenly_over_replicas():
    assert distribute.check_batch_size(64, _Replicas()) == 16
    with pytest.raises(ConfigError, match="batch_size=28 or 32"):
        distribute.check_batch_size(30, _Replicas())


# In-process: models, mixed precision, saving -------------------------------------


def test_mixed_float16_keeps_a_float32_output_and_trains(cancer_split):
    import keras

    x_train, x_test, y_train, y_test = cancer_split
    spec = kk.infer_spec(y_train)
    model = kk.build_model(spec, input_shape=(30,), units=(16,), dropout=0.0,
                           mixed_precision="mixed_float16", learning_rate=0.01, seed=0)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert model.get_layer("body").layers[0].compute_dtype == "float16"
    assert model.get_layer("output").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    kk.fit(model, x_train, y_train, epochs=3, verbose=0, seed=0)
    assert kk.evaluate(model, x_test, y_test)["accuracy"] > 0.85


def test_unknown_precision_policy_fails_before_building():
    spec = kk.ProblemSpec(task="binary")
    with pytest.raises(UnknownNameError, match="Did you mean 'mixed_float16'"):
        kk.build_model(spec, input_shape=(4,), mixed_precision="mixed_float61")


def test_fit_refuses_a_model_built_under_another_strategy(cancer_split):
    x_train, _, y_train, _ = cancer_split
    model = kk.build_model(kk.infer_spec(y_train), input_shape=(30,), units=(8,))
    with pytest.raises(ConfigError, match="variables cannot move between strategies"):
        kk.fit(model, x_train, y_train, strategy="mirrored", verbose=0)


def test_default_strategy_applies_to_build_model_and_fit_follows_the_model(cancer_split):
    x_train, x_test, y_train, y_test = cancer_split
    spec = kk.infer_spec(y_train)
    strategy = kk.set_default_strategy("mirrored")  # one replica per CPU device here
    try:
        model = kk.build_model(spec, input_shape=(30,), units=(8,), learning_rate=0.01, seed=0)
    finally:
        kk.set_default_strategy(None)
    plain = kk.build_model(spec, input_shape=(30,), units=(8,))
    assert model.distribute_strategy is strategy
    assert distribute.model_strategy(model) is strategy
    assert distribute.model_strategy(plain) is None
    batch = 30 * strategy.num_replicas_in_sync
    history = kk.fit(model, x_train, y_train, batch_size=batch, epochs=2, verbose=0, seed=0)
    assert len(history.history["loss"]) == 2
    assert kk.evaluate(model, x_test, y_test)["accuracy"] > 0.8


def test_run_option_keeps_one_run_directory_per_cluster(monkeypatch, tmp_path):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    try:
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
        assert distribute.use_strategy_for_run("default", str(tmp_path), False) == (str(tmp_path), False)
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
        folder, quiet = distribute.use_strategy_for_run("default", str(tmp_path), False)
        assert quiet is True and folder != str(tmp_path) and "kerakit-worker-" in folder
    finally:
        kk.set_default_strategy(None)


def test_save_on_chief_writes_once_and_atomically(cancer_split, tmp_path, monkeypatch):
    import keras

    x_train, _, y_train, _ = cancer_split
    model = kk.build_model(kk.infer_spec(y_train), input_shape=(30,), units=(8,), seed=0)
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert kk.save_on_chief(model, tmp_path / "m.keras") is None
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert kk.save_on_chief(model, tmp_path / "m.keras") == str(tmp_path / "m.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["m.keras"]  # no temporary left behind
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x_train[:5], verbose=0), model.predict(x_train[:5], verbose=0))
    with pytest.raises(ConfigError, match="must end in '.keras'"):
        kk.save_on_chief(model, tmp_path / "m.h5")




@pytest.mark.backends
@pytest.mark.skipif(BACKEND == "tensorflow", reason="checks the other backends")
@pytest.mark.parametrize("strategy", ["mirrored", "multiworker"])
def test_build_model_refuses_a_tf_distribute_strategy_off_tensorflow(strategy):
    with pytest.raises(ConfigError, match=f"Keras is running on '{BACKEND}'.*keras.distribution"):
        kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,), strategy=strategy)
    with pytest.raises(ConfigError, match="--strategy data_parallel"):
        kk.get_strategy(strategy)


@pytest.mark.backends
def test_build_model_takes_the_default_strategy_on_every_backend():
    model = kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(4,), units=(4,), strategy="default")
    assert model.output.shape[-1] == 1


@tensorflow_only
def test_data_parallel_is_refused_on_tensorflow_with_the_alternatives():
    with pytest.raises(ConfigError, match="Set KERAS_BACKEND=jax, or on TensorFlow use strategy='mirrored'"):
        distribute.use_strategy_for_run(distribute.DATA_PARALLEL)


def test_a_jax_process_of_a_launched_run_knows_whether_it_is_the_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    assert kk.is_chief() is False
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    assert kk.is_chief() is True
