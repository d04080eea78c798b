"""Hypothesis's table of the characters UTF-8 can write, laid down before any test needs it.

`st.text()` draws from `characters(codec="utf-8")`, and the first time a process on a machine
without hypothesis's stored tables (a fresh checkout, CI) asks for it, hypothesis works the table
out by encoding and decoding all 1,114,112 code points: about 4.5 s of CPU, paid by the first text
test of each pytest-xdist worker. UTF-8 writes every code point but the surrogates, and each comes
back as it went, so the table is known without that work; it is written where hypothesis reads it.
Should a hypothesis version name or shape the table differently, it works the table out as before:
only the time is lost (tests/support/test_hypothesis_tables.py says so)."""

from __future__ import annotations

import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

SURROGATES = (0xD800, 0xDFFF)
# Hypothesis's name for the table of a codec: the code points it encodes, and those of them that
# do not decode back to themselves.
UTF8_TABLE = "codec-v2-utf-8"


def utf8_intervals() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The code points UTF-8 encodes, as intervals, and those that do not round-trip (none)."""
    encodable = [(0, SURROGATES[0] - 1), (SURROGATES[1] + 1, sys.maxunicode)]
    return encodable, []


def lay_down_quietly() -> Path | None:
    """`lay_down_utf8_table`, where a failure costs only the time it would have saved: a
    hypothesis without `charmap_file`, or storage that cannot be written (hypothesis itself then
    works without it), leaves the table to hypothesis as before."""
    try:
        return lay_down_utf8_table()
    except Exception:
        return None


def lay_down_utf8_table(path: Path | None = None) -> Path:
    """Write the table where hypothesis looks for it, unless it is there already. Written to a
    file beside it and renamed into place, as hypothesis does: several workers may race here."""
    from hypothesis.internal.charmap import charmap_file  # hypothesis's own, not its API

    target = path or charmap_file(UTF8_TABLE)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    with gzip.GzipFile(scratch, "wb", mtime=1) as out:
        out.write(json.dumps(utf8_intervals()).encode())
    os.replace(scratch, target)
    return target
