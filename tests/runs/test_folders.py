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

from kerakit import atomic, runs
from kerakit.errors import ConfigError, KerakitError, RunError


def test_atomic_path_keeps_old_file_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "manifest.json"
    atomic.atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text('{"version": 2, "half')  # a writer that dies half way
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_temporary_name_keeps_suffix_and_lives_next_to_target(tmp_path):
    with atomic.atomic_path(tmp_path / "sub" / "model.keras") as tmp:
        assert tmp.parent == tmp_path / "sub"
        assert tmp.suffix == ".keras"
        tmp.write_bytes(b"x")
    assert (tmp_path / "sub" / "model.keras").read_bytes() == b"x"


def test_a_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """SIGKILL a process in the middle of slow rewrites (like a model save): the file always parses."""
    target = tmp_path / "manifest.json"
    script = textwrap.dedent(f"""
        import json, time
        from kerakit import atomic
        i = 0
        while True:
            i += 1
            text = json.dumps({{"version": i, "payload": ["x" * 200] * 2000}})
            with atomic.atomic_path({str(target)!r}) as tmp:
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
    path = atomic.atomic_write_json(tmp_path / "m.json", {
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


# Process, states and leftovers -------------------------------------


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid no longer names a process
    return child.pid


def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic.atomic_write_text(tmp_path / "a.txt", "hello")
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
    with atomic.atomic_path(tmp_path / "x.keras") as tmp:
        assert f".x.keras.{os.getpid()}." in tmp.name  # names its writer


def test_data_label_comes_from_the_data_file():
    manifest = {"recipe": "csv", "data": {"source": "data/penguins.csv", "target": "species"}}
    assert runs.data_label(manifest) == "penguins.csv → species"
    assert runs.data_label({"recipe": "digits"}) == ""


# Symbolic links and damaged manifests ----------------------------------------------------


def _outside_folder_with_temp_files(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dead_writer = outside / ".draft.99999999.ab.tmp"  # pid 99999999 does not exist
    old_notes = outside / ".notes.tmp"
    for path in (dead_writer, old_notes):
        path.write_text("not kerakit's")
    hour_ago = time.time() - 3600
    os.utime(old_notes, (hour_ago, hour_ago))
    return outside, (dead_writer, old_notes)


@pytest.mark.parametrize("linked", ["run", "recipe"])
def test_temp_file_cleanup_never_follows_links_out_of_the_runs_folder(tmp_path, linked):
    outside, files = _outside_folder_with_temp_files(tmp_path)
    root = tmp_path / "runs"
    if linked == "run":  # runs/csv/<id> → outside
        (root / "csv").mkdir(parents=True)
        (root / "csv" / "20250101-120000-abcd").symlink_to(outside, target_is_directory=True)
    else:  # runs/csv → a folder whose <id> sub-folder holds the files
        (outside / "20250101-120000-abcd").mkdir()
        for path in files:
            (outside / "20250101-120000-abcd" / path.name).write_text("not kerakit's")
        files = [outside / "20250101-120000-abcd" / p.name for p in files] + list(files)
        root.mkdir()
        (root / "csv").symlink_to(outside, target_is_directory=True)
    assert runs.remove_stale_temp_files(root) == []
    runs.list_runs(root)
    runs.Run("digits", root=root)
    assert all(path.exists() for path in files)


def test_a_run_is_never_written_through_a_recipe_folder_linked_out_of_the_runs_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "csv").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunError, match="symbolic link leading out of the runs folder"):
        runs.Run("csv", root=tmp_path / "runs")
    assert list(outside.iterdir()) == []


def test_a_model_file_linked_out_of_its_run_folder_is_refused_by_name(tmp_path):
    elsewhere = tmp_path / "elsewhere.keras"
    elsewhere.write_bytes(b"whatever")
    run = runs.Run("csv", root=tmp_path / "runs")
    run.write_manifest(status="completed")
    (run.dir / "model.keras").symlink_to(elsewhere)
    for target in (run.dir, run.dir / "model.keras"):
        with pytest.raises(RunError, match="symbolic link leading out of its run directory"):
            runs.resolve_model_path(target)
    elsewhere.unlink()  # a dangling link too: refused by name, not "file not found"
    with pytest.raises(RunError, match="symbolic link leading out of its run directory"):
        runs.resolve_model_path(run.dir)


def test_a_runs_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "runs").write_text("a file")
    with pytest.raises(RunError, match="is a file, not a folder"):
        runs.list_runs(tmp_path / "runs")
    with pytest.raises(RunError, match="is a file, not a folder"):
        runs.Run("digits", root=tmp_path / "runs")


TAMPERED = {
    "a list": ["not", "an", "object"],
    "feature_names: 5": {"recipe": "csv", "status": "completed", "data": {"feature_names": 5}},
    "status: 123": {"recipe": "csv", "status": 123},
    "a word for a metric": {"recipe": "csv", "status": "completed", "metrics": {"accuracy": "high"}},
    "spec: a string": {"recipe": "csv", "status": "completed", "spec": "binary"},
}


@pytest.mark.parametrize("kind", sorted(TAMPERED))
def test_tampered_manifests_are_listed_as_damaged_and_refused_by_name(tmp_path, kind):
    good = runs.Run("digits", root=tmp_path, run_id="20250101-120000-aaaa")
    good.write_manifest(recipe="digits", status="completed", metrics={"accuracy": 0.9},
                        spec={"task": "multiclass"}, started="2025-01-01T12:00:00")
    folder = tmp_path / "csv" / "20250101-120000-bbbb"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(TAMPERED[kind]))
    found = {m["recipe"]: m for m in runs.list_runs(tmp_path)}
    assert found["digits"]["status"] == "completed"  # the listing carries on
    assert found["csv"]["status"] == "damaged" and found["csv"]["damage"]
    assert runs.key_metric(found["csv"]) == (None, None) and runs.data_label(found["csv"]) == ""
    with pytest.raises(RunError, match="manifest .* is damaged"):
        runs.read_manifest(folder)
    (folder / "model.keras").write_bytes(b"")
    with pytest.raises(RunError, match="is damaged"):
        runs.resolve_model_path(folder)
