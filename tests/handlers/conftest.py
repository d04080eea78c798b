from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import Runtime
from tests.handlers.posted_plan import ledger, post_plan


@pytest.fixture
def posted(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Runtime:
    """Today's plan for three customers, posted to the finance channel."""
    ledger(slack_runtime, tmp_path)
    post_plan(slack_runtime, slack_api)
    return slack_runtime
