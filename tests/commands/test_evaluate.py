"""`kerakit evaluate`: held-out metrics of a run's model on CSV rows."""

import json

import pytest

from kerakit import cli


@pytest.mark.parametrize("manifest", [["a", "list"], {"status": 123}, {"metrics": {"accuracy": "high"}},
                                      {"data": {"feature_names": 5}}])
def test_a_run_with_a_tampered_manifest_is_refused_by_name(tmp_path, capsys, manifest):
    import kerakit as kk

    run_dir = tmp_path / "runs" / "csv" / "20250101-120000-abcd"
    run_dir.mkdir(parents=True)
    kk.build_model(kk.ProblemSpec(task="binary"), input_shape=(3,), units=(4,)).save(run_dir / "model.keras")
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "rows.csv").write_text("a,b,c,target\n1,2,3,0\n")
    assert cli.main(["evaluate", str(run_dir), "--csv", str(tmp_path / "rows.csv")]) == 1
    err = capsys.readouterr().err
    assert "kerakit evaluate: error: The run's manifest" in err and "is damaged" in err
    assert "Traceback" not in err


def test_a_csv_without_the_runs_label_column_is_refused_before_tensorflow(tmp_path):
    import subprocess
    import sys
    import textwrap

    run_dir = tmp_path / "runs" / "csv" / "20250101-120000-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "model.keras").write_bytes(b"never read")
    (run_dir / "manifest.json").write_text(json.dumps(
        {"recipe": "csv", "status": "completed", "data": {"target": "species", "source": "p.csv"}}))
    (tmp_path / "rows.csv").write_text("mass,specis\n1,a\n")
    script = textwrap.dedent(f"""
        import contextlib, io, sys
        from kerakit.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["evaluate", {str(run_dir)!r}, "--csv", "rows.csv"])
        print(code, "tensorflow" in sys.modules, err.getvalue().strip(), sep=" | ")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    code, tensorflow, message = result.stdout.strip().split(" | ")
    assert (code, tensorflow) == ("1", "False")
    assert "no label column 'species'. Did you mean 'specis'?" in message
