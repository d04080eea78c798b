"""Rendering a step's message in a sandbox: StrictUndefined, so a missing variable is an error and
never a blank in a customer's email; HTML autoescaped, text and SMS not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import DictLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

SMS_LIMIT = 320


class RenderError(ValueError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str


class Renderer:
    def __init__(self, templates: dict[str, str]) -> None:
        loader = DictLoader(templates)
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "auto_reload": False,
        }
        self._text = SandboxedEnvironment(autoescape=False, **common)
        self._html = SandboxedEnvironment(autoescape=True, **common)

    def render(
        self, template: str, context: dict[str, Any], channel: str | None = None
    ) -> Rendered:
        """Every part, or only the parts one channel sends (`email` or `sms`)."""
        email = channel in (None, "email")
        sms = channel in (None, "sms")
        return Rendered(
            subject=" ".join(self._part(template, "subject.txt.j2", context).split())
            if email
            else "",
            text=self._part(template, "body.txt.j2", context).strip() + "\n" if email else "",
            html=self._part(template, "body.html.j2", context).strip() + "\n" if email else "",
            sms=" ".join(self._part(template, "sms.txt.j2", context).split()) if sms else "",
        )

    def _part(self, template: str, part: str, context: dict[str, Any]) -> str:
        name = f"{template}/{part}"
        env = self._html if part.endswith(".html.j2") else self._text
        try:
            return env.get_template(name).render(context)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" line {line}" if line else ""
            raise RenderError(f"template {name}{where}: {exc}") from None
        except Exception as exc:  # a template can raise anything: name the template, never hide it
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from None
