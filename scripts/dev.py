"""Set up the project's virtual environment (once) and run the main job or the tests.

    python3 scripts/dev.py main          # set up, then run the default recipe (digits)
    python3 scripts/dev.py test          # set up, then lint and run the whole test suite (see below)
    python3 scripts/dev.py test --fast   # the daily loop: lint, then the tests not marked `slow`
    python3 scripts/dev.py lint          # the lint step alone

Needs only Python 3 and pip. The environment lives in `.venv/` inside the
checkout; it is created on first use and re-installed only when
`pyproject.toml` changes (a stamp file records its hash), so a second run
starts at once. Extra arguments go to the command, e.g. `dev.py test -k spec`.

`test` first runs the lint step (ruff, the import floors of
pyproject's [tool.importlinter], the wrapped-message check, and the docs
build `mkdocs build --strict` where mkdocs.yml exists), then the whole suite
on TensorFlow (the default backend), then the backend-neutral tests (marker `backends`, less those marked `once`) again on every other Keras backend
installed in the environment: JAX always (a dev dependency), PyTorch where
it is installed (its default wheel is several GB; it is skipped with a note
otherwise). `KERAKIT_TEST_BACKENDS=tensorflow` runs only the first pass.
`--fast` skips the tests marked `slow` in every pass. Each pass runs on two
pytest-xdist workers (`KERAKIT_TEST_WORKERS=N` to change it, 0 for none):
the machines it is made for have two cores, and most tests are short
Python-bound training runs that leave a core idle.
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".kerakit-setup-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _wanted_stamp():
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def setup():
    if not PYTHON.exists():
        print(f"[dev] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    if STAMP.exists() and STAMP.read_text().strip() == _wanted_stamp():
        return
    print("[dev] installing kerakit and its dependencies (first run: about 2 minutes)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(_wanted_stamp())


def main(argv):
    if not argv or argv[0] not in ("main", "test", "lint", "setup"):
        print(__doc__)
        return 2
    setup()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    what, extra = argv[0], argv[1:]
    if what == "setup":
        return 0
    if what == "main":
        command = [str(BIN / "kerakit"), "run", "digits", *extra]
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    if what == "lint":
        return lint(env)
    fast = "--fast" in extra
    extra = [arg for arg in extra if arg != "--fast"]
    code = lint(env)
    if code:
        print("[dev] the lint step failed: fix it before the tests run", flush=True)
        return code
    return run_tests(extra, env, fast=fast)


def lint_commands():
    """The lint step: quick checks of the whole tree, each a command run from the checkout."""
    commands = [
        [str(PYTHON), "-m", "ruff", "check", "kerakit", "recipes", "scripts", "tests"],
        [str(BIN / "lint-imports"), "--no-cache"],
        [str(PYTHON), "scripts/check_messages.py", "kerakit", "recipes", "scripts"],
    ]
    if (ROOT / "mkdocs.yml").exists():
        site = VENV / "site"  # inside .venv: never committed, replaced on each build
        commands.append([str(PYTHON), "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)])
    return commands


def lint(env):
    # mkdocs-material and a plugin print banners about MkDocs 2 on every build
    env = dict(env, NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    for command in lint_commands():
        print(f"[dev] lint: {' '.join(Path(c).name if i == 0 else c for i, c in enumerate(command))}", flush=True)
        result = subprocess.run(command, cwd=ROOT, env=env)
        code = getattr(result, "returncode", 0) or 0
        if code:
            return code
    return 0


def _installed(module):
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    result = subprocess.run([str(PYTHON), "-c", code], cwd=ROOT)
    return getattr(result, "returncode", 1) == 0


def run_tests(extra, env, fast=False):
    """The whole suite on TensorFlow, then the `backends` tests on each other installed backend."""
    wanted = os.environ.get("KERAKIT_TEST_BACKENDS", "tensorflow,jax,torch").split(",")
    pytest = [str(PYTHON), "-m", "pytest", "-q"]
    workers = os.environ.get("KERAKIT_TEST_WORKERS", "2")
    if workers not in ("", "0", "1"):
        pytest += ["-n", workers]
    first, others = ((["-m", "not slow"], ["-m", "backends and not once and not slow"]) if fast
                     else ([], ["-m", "backends and not once"]))
    codes = []
    if "tensorflow" in wanted:
        codes.append(subprocess.run(pytest + first + list(extra), cwd=ROOT,
                                    env=dict(env, KERAS_BACKEND="tensorflow")))
    for backend in ("jax", "torch"):
        if backend not in wanted:
            continue
        if not _installed(backend):
            print(f"[dev] {backend} is not installed: skipping the backend-neutral tests on it "
                  f"(pip install -e '.[{backend}]' to run them)", flush=True)
            continue
        print(f"[dev] backend-neutral tests on KERAS_BACKEND={backend}", flush=True)
        codes.append(subprocess.run(pytest + others + list(extra), cwd=ROOT,
                                    env=dict(env, KERAS_BACKEND=backend)))
    return max((getattr(c, "returncode", 0) or 0 for c in codes), default=0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
