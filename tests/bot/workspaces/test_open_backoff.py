"""A workspace that failed to open is tried again after a wait that doubles up to five minutes,
at once when it changed, and the reason is given meanwhile without trying."""

from __future__ import annotations

import pytest

from bot.core.errors import UserError
from bot.workspaces.open_backoff import LONGEST_WAIT, OpenBackoff, WorkspaceUnavailable


def test_the_wait_doubles_up_to_its_longest_and_a_changed_workspace_is_tried_at_once() -> None:
    now = [0.0]
    backoff = OpenBackoff(lambda: now[0])
    waits = []
    for _ in range(9):
        backoff.check("T0BETA", "v1")  # tried
        backoff.failed("T0BETA", "v1", OSError("disk gone"))
        with pytest.raises(WorkspaceUnavailable, match=r"OSError: disk gone \(tried again in"):
            backoff.check("T0BETA", "v1")
        waited = 0.0
        while True:
            now[0] += 1
            waited += 1
            try:
                backoff.check("T0BETA", "v1")
                break
            except WorkspaceUnavailable:
                continue
        waits.append(waited)
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300] and max(waits) == LONGEST_WAIT
    backoff.failed("T0BETA", "v1", UserError("sealed under another ARBOT_SECRET_KEY"))
    with pytest.raises(UserError, match="ARBOT_SECRET_KEY"):
        backoff.check("T0BETA", "v1")
    backoff.check("T0BETA", "v2")  # reinstalled or its settings changed: tried at once
    backoff.check("T0OTHER", "v1")
    backoff.opened("T0BETA")
    backoff.check("T0BETA", "v1")
