"""Project-level checks: the public surface, message hygiene, lazy imports."""

import os
import subprocess
import sys
from pathlib import Path

import kerakit

ROOT = Path(__file__).resolve().parent.parent

CORE_NAMES = {
    "ProblemSpec", "infer_spec", "validate_labels", "build_model", "register_body",
    "get_optimizer", "default_callbacks", "TerminateOnNaN", "fit", "evaluate", "predict",
    "set_seed", "KerakitError",
}


def test_public_surface_is_pinned():
    assert CORE_NAMES <= set(kerakit.__all__)
    for name in kerakit.__all__:
        assert getattr(kerakit, name) is not None


def test_no_glued_words_in_wrapped_messages():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_messages.py"), "kerakit", "recipes", "scripts"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout


def test_message_checker_catches_a_glued_message(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('raise ValueError("you must" "specify a value")\n')
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_messages.py"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "bad.py:1" in result.stdout


def test_import_kerakit_and_spec_do_not_load_tensorflow():
    code = ("import sys, kerakit; spec = kerakit.infer_spec([0, 1, 1]); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.stdout.split() == ["False", "False"], out.stderr
