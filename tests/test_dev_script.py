"""scripts/dev.py: the README's two commands set up once and reuse the environment."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_dev(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("dev", ROOT / "scripts" / "dev.py")
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")  # an existing environment: no venv creation
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", venv)
    monkeypatch.setattr(dev, "STAMP", venv / ".kerakit-setup-stamp")
    monkeypatch.setattr(dev, "PYTHON", venv / "bin" / "python")
    calls = []
    monkeypatch.setattr(dev.subprocess, "run", lambda command, **kw: calls.append(command))
    return dev, calls


def test_setup_installs_once_and_again_only_when_pyproject_changes(monkeypatch, tmp_path):
    dev, calls = _load_dev(monkeypatch, tmp_path)
    dev.setup()
    assert any("-e" in command for command in calls)  # first run installs the project
    installs = len(calls)
    dev.setup()
    assert len(calls) == installs  # second run: nothing reinstalled
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\nversion = '2'\n")
    dev.setup()
    assert len(calls) > installs  # a changed pyproject.toml reinstalls


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 scripts/dev.py test" in ci
    assert "python3 scripts/dev.py test" in readme and "python3 scripts/dev.py main" in readme


def test_test_command_lints_first_and_fast_skips_slow(monkeypatch, tmp_path):
    dev, calls = _load_dev(monkeypatch, tmp_path)
    monkeypatch.setattr(dev, "_installed", lambda module: module == "jax")
    (tmp_path / ".venv" / ".kerakit-setup-stamp").write_text(dev._wanted_stamp())
    dev.main(["test", "--fast", "-k", "spec"])
    joined = [" ".join(map(str, command)) for command in calls]
    lint = [i for i, c in enumerate(joined) if "ruff" in c or "lint-imports" in c or "check_messages" in c]
    tests = [i for i, c in enumerate(joined) if " -m pytest " in c]
    assert len(lint) == 3 and len(tests) == 2 and max(lint) < min(tests)  # lint before any test
    assert "-n 2" in joined[tests[0]] and "-n 2" in joined[tests[1]]  # two xdist workers
    assert "-m not slow -k spec" in joined[tests[0]]  # TensorFlow: everything not slow
    assert "-m backends and not once and not slow -k spec" in joined[tests[1]]  # JAX: the backend-neutral ones
    calls.clear()
    dev.main(["test"])
    joined = [" ".join(map(str, command)) for command in calls]
    assert not any("not slow" in c for c in joined)  # the full command runs everything


def test_lint_step_builds_the_docs_strictly_when_there_are_docs(monkeypatch, tmp_path):
    dev, _ = _load_dev(monkeypatch, tmp_path)
    assert not any("mkdocs" in command for command in dev.lint_commands())
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    builds = [command for command in dev.lint_commands() if "mkdocs" in command]
    assert len(builds) == 1 and "--strict" in builds[0]
