"""The recipe registry and runner: names, paths, folders, entry points, config flags, run directories."""

import dataclasses
import json
import textwrap
from pathlib import Path
from typing import Literal

import pytest

from kerakit import cli, recipes
from kerakit.errors import RecipeError, RecipeImportError

# A complete recipe small enough to train in a second.
TINY = '''
"""Tiny: a custom recipe written by a user.

Forty rows, one hidden layer.
"""
import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 1  # passes over the data
    units: tuple[int, ...] = (8,)  # hidden widths
    seed: int = 0  # seed
    smoke: bool = False  # smoke


def data(config):
    import numpy as np
    import kerakit as kk
    from kerakit.recipes import split_data

    rng = np.random.default_rng(config.seed)
    x = rng.normal(size=(60, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    return {**split_data(x, y, seed=config.seed), "spec": kk.ProblemSpec(task="binary")}


def run(config, data, run):
    import kerakit as kk

    model = kk.build_model(data["spec"], input_shape=(3,), units=config.units, seed=config.seed)
    history = kk.fit(model, data["x_train"], data["y_train"],
                     validation_data=(data["x_val"], data["y_val"]), epochs=config.epochs,
                     seed=config.seed, verbose=0)
    run.save_history(history)
    run.save_model(model)
    run.print("tiny says hello")
    return kk.evaluate(model, data["x_test"], data["y_test"])


if __name__ == "__main__":
    from kerakit.recipes import main

    main()
'''


def _write(folder, name, text=TINY):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# Finding recipes ------------------------------------------------------------


def test_builtin_recipes_are_listed_with_titles_without_importing():
    found = recipes.available()
    for name in ("digits", "breast-cancer", "wine", "soft-labels", "diabetes",
                 "robust-regression", "multilabel", "csv"):
        assert name in found and found[name].source == "builtin"
    assert found["digits"].title.startswith("Digits:")
    assert "__init__" not in found


def test_unknown_recipe_says_did_you_mean_and_lists_names():
    with pytest.raises(RecipeError, match="Did you mean 'digits'") as error:
        recipes.find("digts")
    assert "breast-cancer" in str(error.value) and "--recipes-dir" in str(error.value)
    assert isinstance(error.value, ValueError)


def test_recipe_by_path_folder_and_environment(tmp_path, monkeypatch):
    path = _write(tmp_path / "mine", "my_tiny.py")
    info = recipes.find(str(path))
    assert (info.name, info.source) == ("my-tiny", "path")
    assert recipes.load(str(path)).Config().epochs == 1

    assert "my-tiny" not in recipes.available()
    assert recipes.available(tmp_path / "mine")["my-tiny"].source == "folder"
    monkeypatch.setenv("KERAKIT_RECIPES_PATH", str(tmp_path / "mine"))
    found = recipes.available()
    assert found["my-tiny"].title == "Tiny: a custom recipe written by a user."
    assert recipes.load("my_tiny").__kerakit_recipe__.name == "my-tiny"  # underscores work too

    with pytest.raises(RecipeError, match="does not exist"):
        recipes.find(str(tmp_path / "absent.py"))
    monkeypatch.setenv("KERAKIT_RECIPES_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(RecipeError, match="KERAKIT_RECIPES_PATH"):
        recipes.available()


def test_a_folder_recipe_shadows_a_builtin_of_the_same_name(tmp_path):
    _write(tmp_path, "digits.py")
    assert recipes.find("digits", tmp_path).path == tmp_path / "digits.py"


def test_entry_point_recipes_from_an_installed_distribution(tmp_path, monkeypatch):
    """A real dist-info on sys.path, as `pip install` writes it, declares the entry point."""
    package = tmp_path / "site" / "acme_recipes"
    _write(package, "__init__.py", "")
    _write(package, "tiny.py")
    info = tmp_path / "site" / "acme_recipes-1.0.dist-info"
    _write(info, "METADATA", "Metadata-Version: 2.1\nName: acme-recipes\nVersion: 1.0\n")
    _write(info, "entry_points.txt", "[kerakit.recipes]\nacme-tiny = acme_recipes.tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    found = recipes.available()
    assert found["acme-tiny"].source == "entry point"
    assert found["acme-tiny"].title.startswith("Tiny:")
    module = recipes.load("acme-tiny")
    assert module.__name__ == "acme_recipes.tiny" and callable(module.run)


def test_import_failure_carries_the_recipes_own_traceback(tmp_path):
    path = _write(tmp_path, "broken.py", '''
        """Broken."""
        import dataclasses


        def helper():
            return 1 / 0


        VALUE = helper()
    ''')
    with pytest.raises(RecipeImportError) as error:
        recipes.load(str(path))
    text = str(error.value)
    assert "Recipe 'broken' failed to import" in text
    assert f'File "{path}", line 10' in text and f'File "{path}", line 7, in helper' in text
    assert "ZeroDivisionError: division by zero" in text
    assert "importlib" not in text and "kerakit/recipes/" not in text


def test_contract_violations_are_named(tmp_path):
    path = _write(tmp_path, "incomplete.py", '''
        import dataclasses

        @dataclasses.dataclass
        class Config:
            epochs: int = 1
            quiet: bool = False

        def data(config):
            return {}
    ''')
    with pytest.raises(RecipeError) as error:
        recipes.load(str(path))
    text = str(error.value)
    assert "seed, smoke" in text and "quiet" in text and "`run(...)`" in text


# Config → flags ---------------------------------------------------------------


@dataclasses.dataclass
class _Config:
    epochs: int = 100  # passes over the data
    rate: float = 1e-3  # step size in %
    name: str = "x"  # a name
    units: tuple[int, ...] = (64, 32)  # widths
    mode: Literal["fast", "slow"] = "fast"  # how
    limit: int | None = None  # optional cap
    out: Path = Path("out")  # where
    required_thing: int = dataclasses.field(default=None, metadata={"help": "from metadata"})
    seed: int = 0  # seed
    smoke: bool = False  # smoke


class _Module:
    __doc__ = "Demo recipe.\n\nLonger text."
    Config = _Config

    @staticmethod
    def data(config):
        return {}

    @staticmethod
    def run(config, data, run):
        return {}


def test_config_fields_become_typed_flags():
    config, options = recipes.parse_args(_Module, [
        "--epochs", "5", "--rate", "0.1", "--units", "8", "4", "2", "--mode", "slow",
        "--limit", "none", "--out", "elsewhere", "--smoke", "--json"], name="demo")
    assert config == _Config(epochs=5, rate=0.1, units=(8, 4, 2), mode="slow", limit=None,
                             out=Path("elsewhere"), smoke=True)
    assert options["json_output"] is True and options["quiet"] is False and options["runs_dir"] is None
    config, _ = recipes.parse_args(_Module, ["--limit", "3", "--no-smoke"], name="demo")
    assert (config.limit, config.smoke, config.units) == (3, False, (64, 32))


def test_help_lists_flags_with_comments_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_:
        recipes.parse_args(_Module, ["--help"], name="demo")
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "kerakit run demo" in text and "Demo recipe." in text
    for fragment in ("--epochs EPOCHS passes over the data (default: 100)",
                     "step size in % (default: 0.001)", "widths (default: 64 32)",
                     "{fast,slow}", "from metadata", "--runs-dir DIR", "--json"):
        assert fragment in text


def test_unknown_flag_lists_the_valid_flags(capsys):
    with pytest.raises(SystemExit) as exit_:
        recipes.parse_args(_Module, ["--epoch", "3"], name="demo")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown flag '--epoch'. Did you mean '--epochs'?" in err
    assert "Valid flags: " in err and "--units" in err and "--smoke" in err
    with pytest.raises(SystemExit):
        recipes.parse_args(_Module, ["--mode", "medium"], name="demo")
    assert "invalid choice: 'medium'" in capsys.readouterr().err


def test_unsupported_field_type_is_refused():
    @dataclasses.dataclass
    class Config:
        table: dict = dataclasses.field(default_factory=dict)
        seed: int = 0
        smoke: bool = False

    with pytest.raises(RecipeError, match="`table` has type"):
        recipes.build_parser(type("M", (), {"Config": Config, "__doc__": ""}), "m")


def test_make_config_checks_names():
    module = recipes.load("digits")
    assert recipes.make_config(module, epochs=3).epochs == 3
    with pytest.raises(RecipeError, match="Did you mean 'epochs'"):
        recipes.make_config(module, epoch=3)


def test_split_data_is_stratified_and_deterministic():
    import numpy as np

    x = np.arange(200).reshape(100, 2)
    y = np.array([0] * 80 + [1] * 20)
    a = recipes.split_data(x, y, test_size=0.2, val_size=0.2, seed=1)
    b = recipes.split_data(x, y, test_size=0.2, val_size=0.2, seed=1)
    assert [len(a[k]) for k in ("y_train", "y_val", "y_test")] == [60, 20, 20]
    assert a["y_test"].mean() == pytest.approx(0.2) and (a["x_test"] == b["x_test"]).all()
    assert len(recipes.split_data(x, y, limit=50)["y_train"]) == 30
    with pytest.raises(RecipeError, match="sum to less than 1"):
        recipes.split_data(x, y, test_size=0.5, val_size=0.5)


# Running (TensorFlow) -------------------------------------------------------------


def test_runner_writes_a_complete_run_directory(tmp_path, capsys):
    path = _write(tmp_path / "src", "tiny.py")
    module = recipes.load(str(path))
    result = recipes.execute(module, recipes.make_config(module, epochs=2), runs_dir=tmp_path / "runs")
    out = capsys.readouterr().out
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == tmp_path / "runs" / "tiny"
    assert "tiny says hello" in out and "Epoch 2/2" not in out  # verbose=0 in this recipe
    assert "held-out test metrics" in out and f"Run directory: {run_dir}" in out
    names = {p.name for p in run_dir.iterdir()}
    assert {"manifest.json", "model.keras", "history.csv", "metrics.json", "learning_curves.png",
            "confusion_matrix.png", "roc.png"} <= names
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["recipe"] == "tiny"
    assert manifest["config"] == {"epochs": 2, "units": [8], "seed": 0, "smoke": False}
    assert manifest["seed"] == 0 and len(manifest["data"]["fingerprint"]) == 64
    assert manifest["data"]["rows"] == {"train": 36, "val": 12, "test": 12}
    assert {"python", "tensorflow", "keras", "kerakit"} <= set(manifest["versions"])
    assert manifest["started"] <= manifest["ended"] and manifest["spec"]["task"] == "binary"
    assert manifest["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert manifest["metrics"]["n"] == 12 and 0 <= manifest["metrics"]["accuracy"] <= 1
    assert manifest["key_metric"] == "accuracy"
    assert (run_dir / "history.csv").read_text().count("\n") == 3
    # The printed precision says which class is positive; the metric keys stay as they were.
    assert manifest["metric_notes"]["precision"] == "positive class: 1" == result["metric_notes"]["recall"]
    [precision] = [line for line in out.splitlines() if line.strip().startswith("precision ")]
    assert precision.endswith("(positive class: 1)")

    # Same seed, same data, same fingerprint; the run directories differ.
    again = recipes.execute(module, recipes.make_config(module, epochs=2), runs_dir=tmp_path / "runs",
                            quiet=True)
    assert capsys.readouterr().out == ""
    second = json.loads((Path(again["run_dir"]) / "manifest.json").read_text())
    assert second["data"]["fingerprint"] == manifest["data"]["fingerprint"]
    assert again["run_dir"] != result["run_dir"]


def test_failing_recipe_marks_the_manifest_failed(tmp_path):
    path = _write(tmp_path, "fails.py", TINY.replace(
        "    run.save_history(history)", "    raise RuntimeError('out of luck')"))
    module = recipes.load(str(path))
    with pytest.raises(RuntimeError, match="out of luck"):
        recipes.execute(module, module.Config(), runs_dir=tmp_path / "runs", quiet=True)
    manifest = json.loads(next((tmp_path / "runs" / "fails").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "failed" and manifest["error"] == "RuntimeError: out of luck"
    assert "metrics" not in manifest


def test_bad_data_and_results_are_refused_with_the_contract(tmp_path):
    path = _write(tmp_path, "nodata.py", TINY.replace(
        '"spec": kk.ProblemSpec(task="binary")}', '"specs": None}'))
    module = recipes.load(str(path))
    with pytest.raises(RecipeError, match="without spec"):
        recipes.execute(module, module.Config(), runs_dir=tmp_path / "runs", quiet=True)
    path = _write(tmp_path, "badresult.py", TINY.replace(
        "    return kk.evaluate(model, data[\"x_test\"], data[\"y_test\"])", "    return [0.5]"))
    module = recipes.load(str(path))
    with pytest.raises(RecipeError, match="dict of test metrics"):
        recipes.execute(module, module.Config(), runs_dir=tmp_path / "runs", quiet=True)


def test_builtin_recipe_files_never_shadow_standard_modules():
    """`python recipes/X.py` puts recipes/ first on sys.path: a `csv.py` there would break `import csv`."""
    import sys

    files = [p for p in recipes.builtin_dir().glob("*.py") if p.name != "__init__.py"]
    assert files
    assert not [p.name for p in files if p.stem in sys.stdlib_module_names]
    assert recipes.recipe_name("recipes/csv_.py") == "csv"
    assert recipes.recipe_name("a/active_digits.py") == "active-digits"


def test_ctrl_c_marks_the_run_interrupted_and_exits_130(tmp_path, capsys):
    path = _write(tmp_path, "stopped.py", TINY.replace(
        "    rng = np.random.default_rng(config.seed)", "    raise KeyboardInterrupt"))
    assert cli.main(["run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 130
    assert "interrupted" in capsys.readouterr().err
    manifest = json.loads(next((tmp_path / "runs" / "stopped").glob("*/manifest.json")).read_text())
    assert manifest["status"] == "interrupted" and manifest["error"].startswith("KeyboardInterrupt")


def test_split_data_keeps_class_proportions_and_leaves_real_targets_unstratified():
    import numpy as np

    x = np.arange(200, dtype="float32")[:, None]
    labels = np.array([0] * 180 + [1] * 20)
    splits = recipes.split_data(x, labels, test_size=0.25, val_size=0.25, seed=0)
    assert splits["y_test"].sum() == 5 and splits["y_val"].sum() == 5
    # A continuous target has no classes: stratifying would fail on 1-member "classes".
    target = np.random.default_rng(0).normal(size=200)
    splits = recipes.split_data(x, target, seed=0)
    assert len(splits["y_test"]) == 40 and len(splits["y_train"]) == 120


# Flags in messages, checks before training, units, small splits -----


def _csv_recipe():
    return recipes.load("csv")


def test_python_arguments_in_messages_become_the_recipes_flags():
    config = _csv_recipe().Config
    message = ("Fix those cells, pass na_values=['?'] if they mean 'missing', or declare it "
               "types={'zip': 'string_categorical'}. Drop rows with drop_missing_target=True, "
               "pass encoding='latin-1', sep=';', ignore=['id'], or na_values=[...]. "
               "`epochs` must be at least 1. Received: epochs=-1. spec.task='x', units=(64, 32)")
    assert recipes.shell_message(message, config) == (
        "Fix those cells, pass --na-values '?' if they mean 'missing', or declare it "
        "--types zip=string_categorical. Drop rows with --drop-missing-target, "
        "pass --encoding latin-1, --sep ';', --ignore id, or --na-values .... "
        "`--epochs` must be at least 1. Received: --epochs -1. spec.task='x', --units 64 32")
    # Names that are not fields of the recipe, and Python callers, keep the Python spelling.
    assert recipes.shell_message("pass cross_bins=3", config) == "pass cross_bins=3"


def test_small_test_splits_are_flagged_with_their_uncertainty():
    from kerakit.spec import ProblemSpec

    low, high = recipes.wilson_interval(0.8, 5)
    assert 0.37 < low < 0.38 and 0.96 < high < 0.97
    binary = ProblemSpec(task="binary")
    [warning] = recipes.measurement_warnings(binary, [0, 1, 1, 0, 1], {"accuracy": 0.8})
    assert "only 5 rows" in warning and "0.38 to 0.96" in warning and "width 0.59" in warning
    assert recipes.measurement_warnings(binary, [0, 1] * 50, {"accuracy": 0.8}) == []
    [thin] = recipes.measurement_warnings(binary, [0] * 97 + [1] * 3, {"accuracy": 0.97})
    assert "fewer than 5 rows of some classes ('1': 3)" in thin
    [regression] = recipes.measurement_warnings(ProblemSpec(task="regression"), [1.0] * 8, {})
    assert "RMSE measured on 8 rows is uncertain by about ±49%" in regression


UNITS = '''
"""Units: a regression recipe trained on a standardized target, tested on 10 rows."""
import dataclasses


@dataclasses.dataclass
class Config:
    fail: bool = False  # refuse the data
    seed: int = 0  # seed
    smoke: bool = False  # smoke


def data(config):
    import numpy as np
    import kerakit as kk
    from kerakit.errors import DataError

    if config.fail:
        raise DataError("Column 'x' mixes numbers and text.")
    x = np.arange(40, dtype="float32").reshape(20, 2)
    return {"x_train": x[:5], "y_train": x[:5, 0], "x_val": x[5:10], "y_val": x[5:10, 0],
            "x_test": x[10:], "y_test": x[10:, 0], "spec": kk.ProblemSpec(task="regression"),
            "target_transform": {"kind": "standardize", "mean": 20.0, "scale": 11.5}}


def run(config, data, run):
    run.save_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]}, units="standardized y units")
    return {"rmse": 2.5, "n": 10}
'''


def test_history_units_target_transform_and_small_split_warning_reach_the_run(tmp_path, capsys):
    module = recipes.load(str(_write(tmp_path / "src", "units.py", UNITS)))
    result = recipes.execute(module, module.Config(), runs_dir=tmp_path / "runs")
    out = capsys.readouterr().out
    assert "learning curves and history.csv are in standardized y units" in out
    assert "Warning: The test split has only 10 rows" in out
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    assert manifest["history_units"] == "standardized y units"
    assert manifest["data"]["target_transform"] == {"kind": "standardize", "mean": 20.0,
                                                    "scale": 11.5}
    assert manifest["warnings"] == result["warnings"] and "±44%" in result["warnings"][0]

    # Input the recipe refuses before training leaves no run directory behind.
    with pytest.raises(RecipeError.__mro__[1], match="mixes numbers"):
        recipes.execute(module, module.Config(fail=True), runs_dir=tmp_path / "runs", quiet=True)
    assert [p.name for p in (tmp_path / "runs" / "units").iterdir()] == [result["run_id"]]


@pytest.mark.slow
def test_csv_recipe_reads_a_semicolon_file_with_the_new_flags(tmp_path, capsys):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.normal(50, 10, 80).round(1).astype(object),
                          "color": rng.choice(["red", "blue"], 80)})
    frame["price"] = (frame["size"].astype(float) * 3 + rng.normal(0, 1, 80)).round(1)
    frame.loc[[3, 9], "size"] = "?"
    frame.loc[5, "price"] = None
    (tmp_path / "houses.csv").write_bytes(frame.to_csv(sep=";", index=False).encode("latin-1"))
    base = [str(tmp_path / "houses.csv"), "--target", "price", "--epochs", "2",
            "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert cli.main(["run", "csv", "--path", *base]) == 1
    assert "--drop-missing-target (keeps 79 rows)" in capsys.readouterr().err
    assert cli.main(["run", "csv", "--path", *base, "--drop-missing-target"]) == 1
    err = capsys.readouterr().err
    assert "pass --na-values ... for tokens" in err and "na_values" not in err
    assert cli.main(["run", "csv", "--path", *base, "--drop-missing-target", "--na-values",
                     "?", "--encoding", "latin-1"]) == 0
    [run_dir] = (tmp_path / "runs" / "csv").iterdir()  # the refused tries left nothing
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["data"]["rows"]["test"] == 12
    assert manifest["data"]["target_transform"]["kind"] == "standardize"
    assert manifest["history_units"].startswith("standardized price units")
    assert manifest["warnings"] and "only 12 rows" in manifest["warnings"][0]


# Settings the chosen model ignores -----


def test_manifest_leaves_out_the_config_fields_the_recipe_says_it_ignores(tmp_path):
    source = TINY.replace("def data(config):", (
        "def unused_config(config):\n"
        "    return {'units': 'this recipe ignores it'}\n\n\n"
        "def data(config):"))
    module = recipes.load(str(_write(tmp_path / "src", "ignores.py", source)))
    result = recipes.execute(module, recipes.make_config(module), runs_dir=tmp_path / "runs",
                             quiet=True)
    manifest = json.loads((Path(result["run_dir"]) / "manifest.json").read_text())
    assert manifest["config"] == {"epochs": 1, "seed": 0, "smoke": False}
    assert manifest["config_unused"] == {"units": "this recipe ignores it"}


def test_csv_recipe_refuses_l2_with_the_table_body(tmp_path, capsys):
    argv = ["run", "csv", "--smoke", "--l2", "0.001", "--runs-dir", str(tmp_path / "runs")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "the table body has no L2 penalty" in err and "mlp" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("manifest.json"))
    module = _csv_recipe()
    assert module.unused_config(module.Config(body="table")) == {
        "l2": "the table body has no L2 penalty; it uses AdamW's weight decay"}
    assert "l2" not in module.unused_config(module.Config(body="mlp", l2=0.01))


def test_csv_recipe_plans_epochs_batches_and_members_by_rows_as_fit_table_does():
    """A large file trains fewer epochs of larger batches with fewer members; flags still win."""
    from kerakit.data.bodies import TABLE_DEFAULTS

    csv_module = _csv_recipe()
    config = recipes.make_config(csv_module, path="x.csv", target="y")
    assert csv_module.plan(config, 500) == (TABLE_DEFAULTS.batch_size_for(500), 40, 8)
    assert csv_module.plan(config, 38_000) == (512, TABLE_DEFAULTS.epochs_for(38_000), 4)
    assert TABLE_DEFAULTS.epochs_for(38_000) < 40
    given = recipes.make_config(csv_module, path="x.csv", target="y", epochs=5, batch_size=64, members=2)
    assert csv_module.plan(given, 38_000) == (64, 5, 2)
    assert csv_module.plan(recipes.make_config(csv_module, smoke=True), 38_000)[1] == 2
