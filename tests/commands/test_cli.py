"""The `kerakit` command itself: instant help paths, unknown commands, quiet TensorFlow start-up."""

import json
import subprocess
import sys
import textwrap

import pytest

from kerakit import cli


def test_help_and_listing_paths_never_import_tensorflow(tmp_path):
    """One fresh interpreter runs each light command and checks sys.modules after each."""
    script = textwrap.dedent(f"""
        import contextlib, io, sys
        from kerakit.cli import main
        for argv in (["--help"], ["recipes"], ["run", "--help"], ["run", "digits", "--help"],
                     ["run", "csv", "--help"], ["runs", "--runs-dir", {str(tmp_path)!r}], ["rnu"],
                     ["--version"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                try:
                    code = main(argv)
                except SystemExit as exit_:
                    code = exit_.code
            heavy = [m for m in ("tensorflow", "keras", "keras_tuner", "sklearn") if m in sys.modules]
            print(" ".join(argv), "|", code, "|", heavy, "|", len(out.getvalue()))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 8
    for line in lines:
        argv, code, heavy, printed = (part.strip() for part in line.split("|"))
        assert heavy == "[]", f"`kerakit {argv}` imported {heavy}"
        assert code == ("2" if argv == "rnu" else "0"), line
        assert argv == "rnu" or int(printed) > 0, line


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("recipes", "run", "runs", "evaluate", "predict", "env"):
        assert f"    {name} " in out


def test_unknown_command_and_recipe_say_did_you_mean(capsys):
    assert cli.main(["rnu", "digits"]) == 2
    assert "unknown command 'rnu'. Did you mean 'run'?" in capsys.readouterr().err
    assert cli.main(["run", "digts"]) == 1
    err = capsys.readouterr().err
    assert "Unknown recipe 'digts'. Did you mean 'digits'?" in err and "Known recipes:" in err
    assert cli.main(["run"]) == 2
    assert "name a recipe" in capsys.readouterr().err


def test_commands_hold_back_tensorflow_start_up_lines():
    import os

    env = {k: v for k, v in os.environ.items() if k != "KERAKIT_TF_LOGS"}
    result = subprocess.run([sys.executable, "-m", "kerakit.cli", "env", "--json"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tensorflow"]
    assert "I0000" not in result.stderr and "absl" not in result.stderr, result.stderr
