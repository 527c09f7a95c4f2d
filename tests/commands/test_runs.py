"""`kerakit runs`: the listing of past runs."""

import json

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
