"""Run directories: atomic writes, manifests, fingerprints, listing. No TensorFlow needed."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from kerakit import runs
from kerakit.errors import ConfigError, KerakitError, RunError


def test_atomic_path_keeps_old_file_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "manifest.json"
    runs.atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with runs.atomic_path(target) as tmp:
            tmp.write_text('{"version": 2, "half')  # a writer that dies half way
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_temporary_name_keeps_suffix_and_lives_next_to_target(tmp_path):
    with runs.atomic_path(tmp_path / "sub" / "model.keras") as tmp:
        assert tmp.parent == tmp_path / "sub"
        assert tmp.suffix == ".keras"
        tmp.write_bytes(b"x")
    assert (tmp_path / "sub" / "model.keras").read_bytes() == b"x"


def test_a_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """SIGKILL a process in the middle of slow rewrites (like a model save): the file always parses."""
    target = tmp_path / "manifest.json"
    script = textwrap.dedent(f"""
        import json, time
        from kerakit import runs
        i = 0
        while True:
            i += 1
            text = json.dumps({{"version": i, "payload": ["x" * 200] * 2000}})
            with runs.atomic_path({str(target)!r}) as tmp:
                with open(tmp, "w") as handle:
                    for start in range(0, len(text), 8192):  # ~50 slow chunks per write
                        handle.write(text[start:start + 8192])
                        handle.flush()
                        time.sleep(0.002)
            if i == 1:
                print("ready", flush=True)
    """)
    rng = np.random.default_rng(0)
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            time.sleep(0.03 + rng.random() * 0.1)  # lands inside a later write
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        manifest = json.loads(target.read_text())  # complete, never truncated
        assert manifest["version"] >= 1 and len(manifest["payload"]) == 2000
    # The killed writes left only hidden temporary files, which listings ignore.
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p != target)


def test_json_writes_numpy_values_and_nan_as_null(tmp_path):
    path = runs.atomic_write_json(tmp_path / "m.json", {
        "a": np.float32(0.5), "b": np.arange(3), "c": float("nan"), "d": (1, 2), "e": tmp_path})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": None, "d": [1, 2],
                                           "e": str(tmp_path)}


def test_fingerprint_changes_with_values_and_is_stable():
    data = {"x_train": np.ones((4, 2)), "y_train": np.array([0, 1, 0, 1]),
            "x_test": {"city": np.array(["a", "b"], dtype=object), "n": np.arange(2)}}
    same = {"x_train": np.ones((4, 2)), "y_train": np.array([0, 1, 0, 1]),
            "x_test": {"n": np.arange(2), "city": np.array(["a", "b"], dtype=object)}}
    changed = dict(data, y_train=np.array([0, 1, 1, 1]))
    assert runs.data_fingerprint(data) == runs.data_fingerprint(same)
    assert runs.data_fingerprint(data) != runs.data_fingerprint(changed)
    assert len(runs.data_fingerprint(data)) == 64


def test_run_saves_history_json_figures_and_refuses_wrong_types(tmp_path):
    from matplotlib.figure import Figure

    run = runs.Run("demo", root=tmp_path, run_id="r1")
    assert run.dir == tmp_path / "demo" / "r1"
    run.save_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    assert (run.dir / "history.csv").read_text().splitlines() == [
        "epoch,loss,val_loss", "1,1.0,1.1", "2,0.5,0.7"]
    figure = Figure()
    figure.subplots().plot([0, 1])
    run.save_figure("curve", figure)
    assert (run.dir / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run.save_json("notes", {"k": 1})
    assert json.loads((run.dir / "notes.json").read_text()) == {"k": 1}
    with pytest.raises(ConfigError, match="keras.Model"):
        run.save_model(object())
    with pytest.raises(ConfigError, match="History"):
        run.save_history([1, 2])
    with pytest.raises(RunError, match="already exists"):
        runs.Run("demo", root=tmp_path, run_id="r1")


def test_save_model_is_atomic_when_saving_fails(tmp_path):
    class Broken:
        def save(self, path):
            with open(path, "wb") as handle:
                handle.write(b"PK half a zip")
            raise OSError("disk full")

    run = runs.Run("demo", root=tmp_path)
    with pytest.raises(OSError):
        run.save_model(Broken())
    assert not (run.dir / "model.keras").exists()
    assert list(run.dir.iterdir()) == []


def test_print_is_silent_when_quiet(tmp_path, capsys):
    runs.Run("a", root=tmp_path, quiet=True).print("hidden")
    runs.Run("b", root=tmp_path, out=sys.stdout).print("shown")
    assert capsys.readouterr().out == "shown\n"


def test_list_runs_key_metric_and_unreadable_manifests(tmp_path):
    for recipe, run_id, started, spec, metrics in (
        ("digits", "2", "2025-01-02T00:00:00", {"task": "multiclass"}, {"log_loss": 0.1, "accuracy": 0.97}),
        ("diabetes", "1", "2025-01-01T00:00:00", {"task": "regression"}, {"mse": 9.0, "r2": 0.45}),
    ):
        run = runs.Run(recipe, root=tmp_path, run_id=run_id)
        run.write_manifest(recipe=recipe, id=run_id, started=started, spec=spec, metrics=metrics)
    broken = tmp_path / "wine" / "3"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text('{"recipe": "wi')
    found = runs.list_runs(tmp_path)
    assert [(m["recipe"], m["status"] if "status" in m else None) for m in found] == [
        ("wine", "unreadable"), ("diabetes", None), ("digits", None)]
    assert runs.key_metric(found[1]) == ("r2", 0.45)
    assert runs.key_metric(found[2]) == ("accuracy", 0.97)
    assert [m["recipe"] for m in runs.list_runs(tmp_path, recipe="digits")] == ["digits"]
    assert runs.list_runs(tmp_path / "missing") == []


def test_runs_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAKIT_RUNS_DIR", str(tmp_path))
    assert runs.runs_dir() == tmp_path
    assert str(runs.runs_dir("elsewhere")) == "elsewhere"


def test_resolve_model_path_errors_say_what_to_pass(tmp_path):
    with pytest.raises(RunError, match="kerakit runs") as error:
        runs.resolve_model_path(tmp_path / "nope")
    assert isinstance(error.value, (KerakitError, ValueError))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no manifest.json"):
        runs.resolve_model_path(tmp_path / "empty")
    run = runs.Run("demo", root=tmp_path)
    run.write_manifest(status="failed")
    with pytest.raises(RunError, match="has no model.keras"):
        runs.resolve_model_path(run.dir)
    (tmp_path / "weights.h5").write_bytes(b"")
    with pytest.raises(RunError, match=".keras"):
        runs.resolve_model_path(tmp_path / "weights.h5")


def test_manifest_lists_its_files(tmp_path):
    run = runs.Run("demo", root=tmp_path)
    run.save_json("extra", {})
    run.write_manifest(status="running")
    manifest = json.loads((run.dir / "manifest.json").read_text())
    assert manifest["files"] == ["extra.json", "manifest.json"]
    assert not any(name.startswith(".") for name in os.listdir(run.dir))


# Process, states and leftovers (issue 14) -------------------------------------


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid no longer names a process
    return child.pid


def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = runs.atomic_write_text(tmp_path / "a.txt", "hello")
        run = runs.Run("demo", root=tmp_path)
        run.write_manifest(status="running")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((run.dir / "manifest.json").stat().st_mode) == 0o644


def test_a_killed_run_is_listed_killed_stale_or_incomplete(tmp_path):
    run = runs.Run("demo", root=tmp_path, run_id="live")
    run.write_manifest(recipe="demo", id="live", status="running", started=runs.timestamp())
    manifest = json.loads((run.dir / "manifest.json").read_text())
    assert manifest["pid"] == os.getpid() and manifest["host"] == socket.gethostname()

    dead = runs.Run("demo", root=tmp_path, run_id="dead")
    dead.manifest["pid"] = _dead_pid()
    dead.write_manifest(recipe="demo", id="dead", status="running", started=runs.timestamp())
    away = runs.Run("demo", root=tmp_path, run_id="away")
    away.manifest.update(pid=1, host="another-host")
    away.write_manifest(recipe="demo", id="away", status="running",
                        started="2020-01-01T00:00:00+00:00")
    # Killed between creating its folder and its first manifest write.
    (tmp_path / "demo" / "20250101-120000-abcd").mkdir()
    (tmp_path / "demo" / "20250101-120000-abcd" / ".manifest.json.99.x1y2z3.tmp.json").write_text("{")

    states = {m["id"]: m["status"] for m in runs.list_runs(tmp_path)}
    assert states == {"live": "running", "dead": "killed", "away": "stale",
                      "20250101-120000-abcd": "incomplete"}
    found = {m["id"]: m for m in runs.list_runs(tmp_path)}
    assert found["dead"]["recorded_status"] == "running"
    assert runs.run_state({"status": "running", "pid": 1, "host": "another-host",
                           "started": runs.timestamp()}) == "running"


def test_half_written_temp_files_of_dead_or_old_writers_are_removed(tmp_path):
    run = runs.Run("demo", root=tmp_path)
    run.write_manifest(status="completed")
    orphan = run.dir / f".model.keras.{_dead_pid()}.ab12cd34.tmp.keras"
    old_style = run.dir / ".history.csv.zz9yx8w7.tmp.csv"
    ours = run.dir / f".model.keras.{os.getpid()}.ef56gh78.tmp.keras"
    for path in (orphan, old_style, ours):
        path.write_bytes(b"half")
    hour_ago = time.time() - 3600
    os.utime(old_style, (hour_ago, hour_ago))
    runs.list_runs(tmp_path)
    assert not orphan.exists() and not old_style.exists()
    assert ours.exists()  # a live writer's file is left alone
    os.utime(ours, (hour_ago, hour_ago))
    runs.Run("demo", root=tmp_path)  # the next run cleans up too
    assert not ours.exists()
    with runs.atomic_path(tmp_path / "x.keras") as tmp:
        assert f".x.keras.{os.getpid()}." in tmp.name  # names its writer


def test_served_name_and_data_label_come_from_the_data_file():
    manifest = {"recipe": "csv", "data": {"source": "data/penguins.csv", "target": "species"}}
    assert runs.served_model_name(manifest) == "penguins"
    assert runs.data_label(manifest) == "penguins.csv → species"
    assert runs.served_model_name({"recipe": "digits"}) == "digits"
    assert runs.data_label({"recipe": "digits"}) == ""
