"""A griffe extension for the docs build: reads kerakit's docstring dialect as Google style.

mkdocstrings (mkdocs.yml, `extensions:`) loads it. Two habits of kerakit's
docstrings, both fine for `help()` and doctest, need a nudge to render:

- examples are doctest lines (`>>> ...` and their output) written flush under
  `Example:`, which Markdown would read as nested block quotes: they become
  fenced `pycon` code blocks;
- an `Args:` entry that documents several parameters at once may wrap its list
  of names (`batch_size, validation_data, seed,` / `    verbose: as in fit`):
  the names are joined onto one line.

The docstrings themselves are not changed; the doctests still run from them.
"""

import re

import griffe

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Keyword Args|Attributes):\s*$")


def fence_doctests(text):
    """Wraps each run of `>>>` lines and their output in a ```pycon fence."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{indent}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def join_wrapped_names(text):
    """Joins an `Args:` entry whose comma-separated names run onto the next line."""
    out, lines, item_indent = [], text.split("\n"), None
    for line in lines:
        section = _SECTION.match(line)
        if section:
            item_indent, out = None, out + [line]
            continue
        stripped = line.strip()
        indent = len(line) - len(stripped) if stripped else None
        if item_indent is None and stripped and out and _SECTION.match(out[-1]):
            item_indent = indent
        previous = out[-1] if out else ""
        if (item_indent is not None and stripped and previous.strip().endswith(",")
                and ":" not in previous and len(previous) - len(previous.lstrip()) == item_indent):
            out[-1] = f"{previous.rstrip()} {stripped}"
            continue
        if stripped and indent is not None and item_indent is not None and indent < item_indent:
            item_indent = None
        out.append(line)
    return "\n".join(out)


class KerakitDocstrings(griffe.Extension):
    """Applies `fence_doctests` and `join_wrapped_names` to every docstring griffe reads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = join_wrapped_names(fence_doctests(obj.docstring.value))
