"""The docs' code runs: every fenced block of every page in docs/, in order, as a reader would.

Each page gets a fresh namespace and a fresh temporary working folder; its
```python blocks run one after the other in that namespace, so a later block
may use what an earlier one defined. ```bash blocks run with bash in the same
folder. A block that cannot run here is marked right above its fence with
`<!-- norun: the reason -->` (a GPU, a server, several machines); the reason
is required. A block marked `<!-- write: NAME -->` is written to the file NAME
in the working folder instead (a recipe file that a later shell block runs).
Other fences (text, json, toml, console output) are not code.
A page that trains models is marked `<!-- test: slow -->` anywhere in it.
"""

import contextlib
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUNNABLE = {"python", "bash"}
NOT_CODE = {"text", "json", "toml", "console", "pycon", "yaml", "ini", "csv", ""}
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*(norun|write):\s*(.*?)\s*-->\s*$")


def code_blocks(text):
    """Yields `(line, language, code, mark)` for each top-level fenced block of a page.

    `mark` is None, `("norun", reason)` or `("write", file name)`.
    """
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        line = text.count("\n", 0, match.start()) + 1
        yield line, match.group(1).lower(), match.group(2), (mark.groups() if mark else None)


def run_page(path, workdir):
    """Runs a page's runnable blocks in order in `workdir`; raises AssertionError naming the failing block."""
    text = path.read_text()
    namespace = {"__name__": "__docs__"}
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    ran = 0
    with contextlib.chdir(workdir):
        for line, language, code, mark in code_blocks(text):
            if mark is not None and mark[0] == "write":
                Path(mark[1]).write_text(code)
                continue
            if mark is not None or language not in RUNNABLE:
                continue
            where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"
            if language == "python":
                try:
                    exec(compile(code, where, "exec"), namespace)
                except Exception:
                    raise AssertionError(f"the python block at {where} failed:\n{code}\n"
                                         f"{traceback.format_exc()}") from None
            else:
                result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env=env, cwd=workdir,
                                        capture_output=True, text=True, timeout=300)
                if result.returncode:
                    raise AssertionError(f"the bash block at {where} exited {result.returncode}:\n"
                                         f"{code}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            ran += 1
    return ran


PAGES = sorted(DOCS.rglob("*.md"))


def _param(path):
    slow = "<!-- test: slow -->" in path.read_text()
    return pytest.param(path, id=str(path.relative_to(DOCS)), marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_page_code_runs(page, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    run_page(page, tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_block_is_runnable_or_says_why_not(page):
    for line, language, _code, mark in code_blocks(page.read_text()):
        where = f"{page.relative_to(ROOT)}:{line}"
        assert language in RUNNABLE | NOT_CODE, f"{where}: unknown fence language {language!r}"
        if mark is not None:
            assert mark[1], f"{where}: a {mark[0]} mark needs its argument: <!-- {mark[0]}: ... -->"
            assert language in RUNNABLE, f"{where}: {mark[0]} on a {language or 'plain'} block"


def test_a_failing_block_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n```python\nx = 1\n```\n\n<!-- norun: needs a GPU -->\n```python\n"
                    "raise RuntimeError('skipped')\n```\n\n```python\nassert x == 2, 'x is 1'\n```\n")
    with pytest.raises(AssertionError, match=r"(?s)page.md:12 failed.*x is 1"):
        run_page(page, tmp_path)


def test_blocks_share_a_namespace_and_run_in_the_work_folder(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nfrom pathlib import Path\nPath('made.txt').write_text('hi')\n```\n\n"
                    "```bash\ntest -f made.txt\n```\n\n```python\nassert Path('made.txt').exists()\n```\n"
                    "```text\nnot code\n```\n")
    assert run_page(page, tmp_path) == 3


def test_a_write_block_becomes_a_file_a_later_block_uses(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- write: tool.py -->\n```python\nraise SystemExit(3)\n```\n\n"
                    "```bash\npython tool.py || test $? -eq 3\n```\n")
    assert run_page(page, tmp_path) == 1
    assert (tmp_path / "tool.py").read_text() == "raise SystemExit(3)\n"


def test_a_failing_bash_block_fails_the_page(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\nfalse\necho never\n```\n")
    with pytest.raises(AssertionError, match="exited 1"):
        run_page(page, tmp_path)
