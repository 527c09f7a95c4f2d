"""Reading a CSV in blocks of whole lines, checking each block before it is parsed.

Both the in-memory path and the streaming path read files through
`CsvReader`, so they see the same columns, the same missing-value tokens and
the same errors: an empty file, a header without rows, bytes that are not
valid in the file's encoding (with the line number) and ragged rows (with
their line numbers and field counts) are refused before anything is trained.
"""

import codecs
import csv
import io
import os
import tempfile
import weakref

import numpy as np

from kerakit.errors import DataError

# Cells pandas reads as missing by default, spelled out so the tf.data reader
# (which parses the same text) treats exactly the same cells as missing.
NA_TOKENS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)
BLOCK_BYTES = 4 << 20
_BOM = b"\xef\xbb\xbf"
# Separators `sniff_separator` chooses from, most common first.
SEPARATORS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 << 10


def sniff_separator(path, encoding="utf-8"):
    """Guesses a CSV file's field separator (`,` `;` tab or `|`) from its first lines.

    Uses `csv.Sniffer` on the first 64 KiB, and keeps its answer only if the
    header line contains that separator; otherwise (one column, or a sample
    the sniffer cannot read) the answer is ",".

    Example:

    ```python
    sniff_separator("penguins_semicolon.csv")
    # ';'
    ```
    """
    with open(os.fspath(path), "rb") as f:
        sample = f.read(SNIFF_BYTES)
    if sample.startswith(_BOM):
        sample = sample[len(_BOM):]
    cut = sample.rfind(b"\n")
    if 0 < cut < len(sample) - 1:
        sample = sample[: cut + 1]  # whole lines only
    text = sample.decode(encoding, errors="replace")
    header = next((line for line in text.splitlines() if line.strip()), "")
    try:
        found = csv.Sniffer().sniff(text, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        found = None
    if found not in SEPARATORS or found not in header:
        counts = {sep: header.count(sep) for sep in SEPARATORS}
        found = max(SEPARATORS, key=lambda sep: counts[sep]) if any(counts.values()) else ","
    return found


def _plain_copy(path, encoding):
    """Why a file is read through a UTF-8 copy with "\n" line ends (None: read it as it is).

    Blocks are cut at b"\n", which needs an encoding where "\n" is that one
    byte (not UTF-16 or UTF-32), and a file whose lines end in "\n" (not the
    lone "\r" of old Mac files).
    """
    if codecs.lookup(encoding).name.startswith(("utf-16", "utf-32")):
        return "wide"
    with open(path, "rb") as f:
        sample = f.read(SNIFF_BYTES)
    return "old_mac" if b"\r" in sample and b"\n" not in sample else None


def _copy_as_utf8(path, encoding, old_mac):
    """Writes `path` as UTF-8 with "\n" line ends to a temporary file; returns its path."""
    handle, temp = tempfile.mkstemp(prefix="kerakit-", suffix=".csv")
    try:
        with open(path, encoding=encoding, newline="") as source, \
                os.fdopen(handle, "w", encoding="utf-8", newline="") as target:
            line = 1
            while chunk := source.read(1 << 20):
                if old_mac:
                    chunk = chunk.replace("\r", "\n")
                target.write(chunk)
                line += chunk.count("\n")
    except UnicodeDecodeError as error:
        os.remove(temp)
        raise DataError(
            f"{path!r} is not valid {encoding}: near line {line}, {error.reason}. Pass the "
            f"file's encoding (e.g. encoding='utf-16' or encoding='latin-1'), or re-save it as UTF-8."
        ) from None
    except BaseException:
        os.remove(temp)
        raise
    return temp


def _lines_text(lines, limit=5):
    text = ", ".join(str(line) for line in lines[:limit])
    return text + (", ..." if len(lines) > limit else "")


class CsvReader:
    """Reads a CSV file as blocks of whole lines; checks encoding and row widths.

    Args:
        path: the CSV file.
        encoding: the file's text encoding. Defaults to "utf-8".
        sep: the field separator, or None to sniff it from the file (see
            `sniff_separator`). Defaults to ",".
        block_bytes: bytes per block. Defaults to 4 MiB.

    Example:

    ```python
    reader = CsvReader("data.csv")
    reader.columns                       # from the header
    for first_line, frame in reader.frames(dtype=str):
        ...                              # one DataFrame per block, indexed by line number
    ```
    """

    def __init__(self, path, encoding="utf-8", sep=",", block_bytes=None):
        self.path = os.fspath(path)
        self.encoding = encoding
        self.block_bytes = int(block_bytes or BLOCK_BYTES)
        self.multiline = False
        if not os.path.isfile(self.path):
            raise DataError(f"No CSV file at {self.path!r}. Check the path.")
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError):
            raise DataError(
                f"Unknown text encoding {encoding!r} for {self.path!r}. Pass a Python codec "
                f"name, e.g. encoding='utf-8', encoding='latin-1' or encoding='cp1252'."
            ) from None
        # What is read: the file, or a UTF-8 copy of it with "\n" line ends (messages name the file).
        self.file = self.path
        copy = _plain_copy(self.path, encoding)
        if copy is not None:
            self.file = _copy_as_utf8(self.path, encoding, old_mac=copy == "old_mac")
            self.encoding = "utf-8"
            weakref.finalize(self, os.remove, self.file)
        if sep is None:
            sep = sniff_separator(self.file, self.encoding)
        if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"":
            raise DataError(
                f"The CSV separator must be one character other than a quote or a line end, "
                f"such as ',' or ';'. Received: sep={sep!r}."
            )
        self.sep = sep
        with open(self.file, "rb") as f:
            header = f.readline()
            while header and not header.strip():
                header = f.readline()
            self._data_start = f.tell()
        if not header.strip():
            raise DataError(
                f"{self.path!r} is empty: it has no header and no rows. Pass a CSV file with a "
                f"header line naming the columns, then one line per row."
            )
        if header.startswith(_BOM):
            header = header[len(_BOM):]
        text = self._decode(header, 1)
        names = next(csv.reader([text], delimiter=sep))
        names = [name.strip() or f"Unnamed: {i}" for i, name in enumerate(names)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DataError(
                f"{self.path!r} has duplicate column names {duplicates}. Rename them so each "
                f"column has its own name."
            )
        if len(names) == 1:
            others = [c for c in SEPARATORS if c != sep and c in names[0]]
            if others:
                raise DataError(
                    f"{self.path!r} reads as a single column named {names[0]!r} with separator "
                    f"{sep!r}, but that name contains {others[0]!r}: the file looks separated by "
                    f"{others[0]!r}. Pass sep={others[0]!r}."
                )
        self.columns = names

    def _decode(self, block, first_line):
        try:
            return block.decode(self.encoding)
        except UnicodeDecodeError as error:
            line = first_line + block.count(b"\n", 0, error.start)
            bad = error.object[error.start:error.end]
            raise DataError(
                f"{self.path!r} is not valid {self.encoding}: line {line} holds the byte(s) "
                f"{bad!r}. Re-save the file as UTF-8, or pass the file's encoding "
                f"(e.g. encoding='latin-1') to read it as it is."
            ) from None

    def blocks(self):
        """Yields `(first_line_number, bytes)` blocks of whole data lines, each checked."""
        seen_rows = False
        with open(self.file, "rb") as f:
            f.seek(self._data_start)
            line = 2
            carry = b""
            while True:
                chunk = f.read(self.block_bytes)
                if not chunk:
                    break
                data = carry + chunk
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                block, carry = data[: cut + 1], data[cut + 1:]
                seen_rows |= self._check(block, line)
                yield line, block
                line += block.count(b"\n")
            if carry:
                seen_rows |= self._check(carry, line)
                yield line, carry
        if not seen_rows:
            raise DataError(
                f"{self.path!r} has a header ({len(self.columns)} columns: "
                f"{', '.join(self.columns[:8])}{', ...' if len(self.columns) > 8 else ''}) but no "
                f"data rows. Add rows, or check that the file was written completely."
            )

    def _check(self, block, first_line):
        """Checks encoding and widths; returns whether the block has a non-blank line."""
        text = self._decode(block, first_line)
        if '"' in text:
            widths, lines = self._quoted_widths(text, first_line)
        else:
            widths, lines = self._plain_widths(block, first_line)
        blank = widths == 0
        bad = (widths != len(self.columns)) & ~blank
        if bad.any():
            where = [f"{int(n)} ({int(w)} field{'s' if w != 1 else ''})"
                     for n, w in zip(lines[bad][:5], widths[bad][:5], strict=True)]
            raise DataError(
                f"{self.path!r} has ragged rows: the header has {len(self.columns)} columns but "
                f"{int(bad.sum())} row(s) in this block do not, at line(s) "
                f"{_lines_text(where)}. Fix those rows (a missing or extra separator, or an "
                f"unquoted {self.sep!r} inside a value)."
            )
        return bool((~blank).any())

    def _plain_widths(self, block, first_line):
        # Vectorized: count separators per line without building Python strings.
        arr = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10)
        if arr.size and arr[-1] != 10:
            ends = np.append(ends, arr.size)
        starts = np.r_[0, ends[:-1] + 1]
        seps = np.flatnonzero(arr == ord(self.sep))
        widths = np.bincount(np.searchsorted(ends, seps), minlength=ends.size) + 1
        lengths = ends - starts
        has_cr = (lengths > 0) & (arr[np.maximum(ends - 1, 0)] == 13)
        widths[(lengths - has_cr) == 0] = 0
        return widths, first_line + np.arange(ends.size)

    def _quoted_widths(self, text, first_line):
        reader = csv.reader(io.StringIO(text), delimiter=self.sep)
        widths, lines = [], []
        previous = 0
        for row in reader:
            if reader.line_num - previous > 1:
                self.multiline = True
            widths.append(len(row) if any(row) or len(row) > 1 else 0)
            lines.append(first_line + previous)
            previous = reader.line_num
        return np.asarray(widths, dtype=np.int64), np.asarray(lines, dtype=np.int64)

    def parse(self, first_line, block, dtype=None, usecols=None, na_values=()):
        """Parses one block into a DataFrame indexed by CSV line number.

        Blank lines are kept as all-missing rows here (so row positions match
        line numbers); `read_frame` drops them.
        """
        import pandas as pd

        frame = pd.read_csv(
            io.BytesIO(block), header=None, names=self.columns, sep=self.sep,
            encoding=self.encoding, dtype=dtype, usecols=usecols,
            na_values=list(NA_TOKENS) + list(na_values), keep_default_na=False,
            skip_blank_lines=False,
        )
        frame.index = pd.RangeIndex(first_line, first_line + len(frame))
        return frame

    def frames(self, dtype=None, usecols=None, na_values=()):
        """Yields `(first_line, DataFrame)` for each block (see `parse`)."""
        for first_line, block in self.blocks():
            yield first_line, self.parse(first_line, block, dtype, usecols, na_values)


def read_frame(path, encoding="utf-8", sep=",", na_values=()):
    """Reads a whole CSV as text columns, indexed by line number, blank lines dropped.

    `sep=None` sniffs the separator (see `sniff_separator`).

    Every cell is kept as the text of the file (missing cells as NaN), so types
    are inferred by `kerakit.data` the same way for a file read whole and for
    one streamed in blocks.

    Example:

    ```python
    frame = read_frame("data.csv")
    frame.loc[7]                     # the row on line 7 of the file
    ```
    """
    import pandas as pd

    reader = CsvReader(path, encoding=encoding, sep=sep)
    parts = [frame for _, frame in reader.frames(dtype=str, na_values=na_values)]
    frame = pd.concat(parts) if len(parts) > 1 else parts[0]
    return frame[frame.notna().any(axis=1)]
