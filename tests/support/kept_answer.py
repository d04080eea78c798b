"""An answer that takes a test process long to work out, kept in the temporary folder between the
test processes of a run and between runs, under a digest of everything it depends on.

The processes of one run wait on a lock for the first to work it out; a later run whose digest
is the same reads it back. The answer is written whole or not at all (a file written aside, then
moved into place). A temporary folder not ours to write keeps nothing: the answer is worked out
as without this."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def kept_answer(name: str, digest: str, work: Callable[[], Any]) -> Any:
    """The JSON answer kept as `name` under `digest`, or `work`'s (JSON-serialisable), then kept
    for the next process."""
    kept = Path(tempfile.gettempdir()) / name
    try:
        lock = open(f"{kept}.lock", "a")  # noqa: SIM115 (closed below, after the work)
    except OSError:  # a temporary folder not ours to write: work it out, keeping nothing
        return work()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        try:
            found = json.loads(kept.read_text())
        except (OSError, ValueError):
            found = {}
        if found.get("digest") == digest and "answer" in found:
            return found["answer"]
        answer = work()
        written = kept.with_suffix(f".{os.getpid()}.part")
        written.write_text(json.dumps({"digest": digest, "answer": answer}))
        written.replace(kept)  # whole or not at all
    return answer
