"""The answer of a workspace that uninstalled arbot to a message it does not record (anything but
an opt-out: bot/replies/uninstalled.py): not found, as every message to it was answered before."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

NOT_INSTALLED = "arbot is not installed in this workspace; only opt-outs are recorded"


def not_installed() -> Response:
    return JSONResponse({"status": "not found", "detail": NOT_INSTALLED}, status_code=404)
