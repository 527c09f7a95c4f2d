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


def test_printed_metrics_say_how_classes_are_averaged(tmp_path, capsys):
    import kerakit as kk

    spec = kk.ProblemSpec(task="multiclass", class_names=["cat", "dog", "fox"])
    model = kk.build_model(spec, input_shape=(2,), units=(4,))
    model.save(tmp_path / "model.keras")
    (tmp_path / "rows.csv").write_text("a,b,target\n1,2,cat\n0,1,dog\n3,1,fox\n2,2,dog\n")
    argv = ["evaluate", str(tmp_path / "model.keras"), "--csv", str(tmp_path / "rows.csv")]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    [f1] = [line for line in lines if line.strip().startswith("f1 ")]
    assert f1.endswith("(macro average over 3 classes)")
    assert not any("average" in line for line in lines if line.strip().startswith("accuracy"))
    assert cli.main([*argv, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["metric_notes"]["precision"] == "macro average over 3 classes"
    assert set(found["metrics"]) >= {"precision", "recall", "f1", "accuracy"}
