"""Reading CSV files: old-Mac line ends, UTF-16, infinite cells and very wide tables."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kerakit as kk
from kerakit.data import read_frame, read_table
from kerakit.data.schema import MAX_FEATURE_COLUMNS
from kerakit.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.backends
ROWS = ["size,city,busy", "1.5,Oslo,yes", "2.5,Rome,no", "3.5,Oslo,yes", "4.0,Rome,no"]


def test_old_mac_line_ends_are_read(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes("\r".join(ROWS).encode() + b"\r")
    frame = read_frame(path)
    assert list(frame.columns) == ["size", "city", "busy"]
    assert frame["city"].tolist() == ["Oslo", "Rome", "Oslo", "Rome"]
    assert frame.index.tolist() == [2, 3, 4, 5]  # line numbers, as for any file
    with pytest.raises(DataError, match="lone"):
        kk.fit_table(str(path), target="busy", streaming=True)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_wide_encodings_are_read_line_by_line(tmp_path, encoding):
    path = tmp_path / "wide.csv"
    path.write_bytes(("\r\n".join(ROWS + ["5.0,Zürich,yes"]) + "\r\n").encode(encoding))
    frame = read_frame(path, encoding=encoding)
    assert frame["city"].tolist()[-1] == "Zürich" and len(frame) == 5
    assert read_frame(path, encoding=encoding, sep=None).shape == (5, 3)


def test_undecodable_wide_file_names_the_encoding(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_bytes("a,b\n1,2\n".encode("utf-16")[:-1])  # a dangling half character
    with pytest.raises(DataError, match="not valid utf-16"):
        read_frame(path, encoding="utf-16")


def test_infinite_cells_are_named_by_csv_line_and_column(tmp_path):
    path = tmp_path / "inf.csv"
    lines = ["x,z,y"] + [f"{i / 10},{i % 3},{i % 2}" for i in range(30)]
    lines[3] = "1e400,1,0"
    lines[8] = "inf,2,1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        kk.fit_table(str(path), target="y", epochs=1)
    message = str(error.value)
    assert "Column 'x' has 2 infinite cell(s)" in message and "line(s) 4, 9" in message


def test_a_table_wider_than_the_limit_is_refused_up_front(tmp_path):
    columns = MAX_FEATURE_COLUMNS + 1
    path = tmp_path / "wide.csv"
    rng = np.random.default_rng(0)
    header = ",".join(f"c{i}" for i in range(columns)) + ",y"
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(40, columns + 1)))
    path.write_text(header + "\n" + body + "\n")
    with pytest.raises(ConfigError, match=f"at most {MAX_FEATURE_COLUMNS}"):
        read_table(str(path), target="y")


@pytest.mark.once
@pytest.mark.slow
def test_run_csv_reads_a_utf16_file(tmp_path):
    path = tmp_path / "shops.csv"
    rng = np.random.default_rng(0)
    lines = ["size,city,busy"] + [f"{rng.normal():.3f},{rng.choice(['Oslo', 'Rome'])},{i % 2}"
                                  for i in range(60)]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-16"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from kerakit.cli import main; sys.exit(main())", "run", str(ROOT / "recipes" / "csv_.py"), "--path", str(path), "--target", "busy",
         "--encoding", "utf-16", "--smoke", "--runs-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "string_categorical" in out.stdout
