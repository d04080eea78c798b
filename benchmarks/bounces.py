"""How many of the real bounces in ../shared/corpus/bounces-sisimai/ arbot recognises (as a
failed delivery, a delay, a refusal for our side or a spam complaint), for how many it finds the
failed recipient, and how many of those recipients the message itself confirms (its status
block's Final-Recipient, or the returned original's To:). Skipped, saying why, without the corpus."""

from __future__ import annotations

import re
import time
from pathlib import Path

from benchmarks.options import Options
from benchmarks.results import Result
from integrations.email_in import parse

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpus/bounces-sisimai/maildir/bsd"
_CONFIRMING = re.compile(
    rb"^(?:Final-Recipient|Original-Recipient|X-Failed-Recipients|To)\s*:\s*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)


def measure(folder: Path = CORPUS) -> tuple[int, int, int, int, int, float]:
    """(messages, recognised, with a recipient, recipients confirmed, confirmable, seconds)."""
    files = sorted(folder.glob("*.eml"))
    recognised = with_recipient = confirmed = confirmable = 0
    started = time.perf_counter()
    for path in files:
        raw = path.read_bytes()
        bounce = parse(raw).bounce
        if bounce is None:
            continue
        recognised += 1
        if not bounce.recipients:
            continue
        with_recipient += 1
        named = b" ".join(m.group(1) for m in _CONFIRMING.finditer(raw)).lower()
        if named:
            confirmable += 1
            confirmed += any(a.encode() in named for a in bounce.recipients)
    return (
        len(files),
        recognised,
        with_recipient,
        confirmed,
        confirmable,
        time.perf_counter() - started,
    )


def run(options: Options) -> list[Result]:
    if not CORPUS.is_dir():
        print(f"bounces recognised: skipped, the corpus is absent ({CORPUS})")
        return []
    total, recognised, with_recipient, confirmed, confirmable, seconds = measure()
    print(
        f"bounces recognised: {recognised}/{total} ({100 * recognised / total:.1f}%); "
        f"failed recipient found for {with_recipient}/{recognised} "
        f"({100 * with_recipient / max(recognised, 1):.1f}%), confirmed by the message's own "
        f"Final-Recipient/To for {confirmed}/{confirmable}; {seconds:.2f} s",
        flush=True,
    )
    return [
        Result(
            "bounces recognised", "", f"{total} real bounces", 100 * recognised / total, unit="%"
        ),
        Result(
            "bounce recipient found", "", f"{recognised} recognised",
            100 * with_recipient / max(recognised, 1), unit="%",
        ),
    ]  # fmt: skip
