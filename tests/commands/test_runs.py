"""`kerakit runs`: the listing of past runs."""

import json

import pytest

from kerakit import cli


def test_runs_lists_the_data_file_target_and_state(tmp_path, capsys):
    from kerakit import runs

    run = runs.Run("csv", root=tmp_path, run_id="20250101-120000-abcd")
    run.write_manifest(recipe="csv", id=run.id, status="completed", started="2025-01-01T12:00:00",
                       data={"source": "data/penguins.csv", "target": "species"},
                       warnings=["The test split has only 5 rows"])
    assert cli.main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "DATA" in out and "penguins.csv → species" in out and "too small to measure" in out
    assert cli.main(["runs", "--runs-dir", str(tmp_path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["data"] == {"source": "data/penguins.csv", "target": "species"}
    assert row["warnings"] == ["The test split has only 5 rows"]


@pytest.mark.parametrize("last", ["0", "-3", "two"])
def test_last_must_be_a_positive_count(tmp_path, capsys, last):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["runs", "--runs-dir", str(tmp_path), "--last", last])
    assert exit_.value.code == 2
    assert "argument --last: must be a whole number of at least 1" in capsys.readouterr().err


def test_a_runs_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "runs").write_text("a file")
    assert cli.main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "kerakit runs: error: " in err and "is a file, not a folder" in err
    assert "Traceback" not in err


def test_a_tampered_manifest_is_listed_as_damaged_and_the_listing_carries_on(tmp_path, capsys):
    from kerakit import runs

    good = runs.Run("digits", root=tmp_path, run_id="20250101-120000-aaaa")
    good.write_manifest(recipe="digits", id=good.id, status="completed", metrics={"accuracy": 0.9},
                        spec={"task": "multiclass"}, started="2025-01-01T12:00:00")
    for i, manifest in enumerate([["a", "list"], {"status": 123}, {"metrics": {"accuracy": "high"}},
                                  {"data": {"feature_names": 5}}]):
        folder = tmp_path / "csv" / f"20250102-120000-000{i}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    assert cli.main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "accuracy 0.9000" in out and out.count("damaged") >= 8
    assert cli.main(["runs", "--runs-dir", str(tmp_path), "--json", "--recipe", "csv"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows] == ["damaged"] * 4 and all(r["damage"] for r in rows)
