"""The real third-party samples in ../shared/corpus/ (beside the project, never copied into it):
a test that reads one is skipped, saying why, when they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def corpus_file(*parts: str) -> Path:
    """The sample at ../shared/corpus/<parts>; skips the calling test when it is not there."""
    path = CORPUS.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"the shared corpus sample {'/'.join(parts)} is absent (../shared/corpus/)")
    return path
