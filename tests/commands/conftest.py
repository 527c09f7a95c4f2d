"""Shared by the command tests: a tiny recipe (three classes, four features) that trains in seconds."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

TINY = '''
"""Tiny CLI recipe."""
import dataclasses


@dataclasses.dataclass
class Config:
    epochs: int = 1  # passes
    seed: int = 0  # seed
    smoke: bool = False  # smoke


def data(config):
    import numpy as np
    import kerakit as kk
    from kerakit.recipes import split_data

    rng = np.random.default_rng(config.seed)
    x = rng.normal(size=(90, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)
    spec = kk.ProblemSpec(task="multiclass", num_classes=3, class_names=["lo", "mid", "hi"])
    return {**split_data(x, y, seed=config.seed), "spec": spec,
            "feature_names": ["a", "b", "c", "d"], "target": "label"}


def run(config, data, run):
    import kerakit as kk

    model = kk.build_model(data["spec"], input_shape=(4,), units=(16,), seed=config.seed)
    history = kk.fit(model, data["x_train"], data["y_train"], epochs=config.epochs,
                     validation_data=(data["x_val"], data["y_val"]), seed=config.seed)
    run.save_history(history)
    run.save_model(model)
    return kk.evaluate(model, data["x_test"], data["y_test"])
'''


@pytest.fixture
def tiny_recipe_dir(tmp_path):
    """A recipes folder holding `tiny_cli.py` (recipe `tiny-cli`)."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "tiny_cli.py").write_text(TINY)
    return folder


@pytest.fixture
def manifest_run(tmp_path):
    """Makes a run folder with only a manifest (its model file is never read) and returns its path."""
    import json

    def make(suffix="abcd", target="species", feature_names=("mass", "height")):
        run_dir = tmp_path / "runs" / "csv" / f"20250101-120000-{suffix}"
        run_dir.mkdir(parents=True)
        (run_dir / "model.keras").write_bytes(b"never read")
        (run_dir / "manifest.json").write_text(json.dumps(
            {"recipe": "csv", "status": "completed",
             "data": {"target": target, "feature_names": list(feature_names), "source": "p.csv"}}))
        return run_dir

    return make


@pytest.fixture
def cli_in_subprocess(tmp_path):
    """Runs `kerakit ARGS` in a fresh Python in `tmp_path`; returns (exit code, TensorFlow loaded?, stderr)."""
    import subprocess
    import sys
    import textwrap

    def run(argv):
        script = textwrap.dedent(f"""
            import contextlib, io, sys
            from kerakit.cli import main
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main({[str(a) for a in argv]!r})
            print(code, "tensorflow" in sys.modules, err.getvalue().strip(), sep=" | ")
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        code, tensorflow, message = result.stdout.strip().split(" | ", 2)
        return int(code), tensorflow == "True", message

    return run
