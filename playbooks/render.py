"""Rendering a step's message in a sandbox: StrictUndefined, so a missing variable is an error and
never a blank in a customer's email; HTML autoescaped, text and SMS not. A value with a form of
its own for a text message (`WithSmsForm`: a date) is printed in the SMS in that form.

Templates are compiled once per process for the same texts: a plan renders thousands of messages
from a few dozen templates, and a new Renderer for the same playbook finds them compiled. A new set
of texts (a proposal that adds or changes one template of the 171 bundled) compiles only the texts
not seen before: each kind of sandbox keeps the code of every text it compiled."""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
from jinja2 import BytecodeCache, DictLoader, StrictUndefined, Template, TemplateError
from jinja2.bccache import Bucket
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


class WithSmsForm(str):
    """A context value an SMS writes otherwise: a date reads "3 août 2026" in an email and
    "03/08/2026" in a text, shorter and in the GSM-7 alphabet whatever the month (one letter
    outside it, the û of août, would make every segment of the text hold 67 characters)."""

    sms: str

    def __new__(cls, text: str, sms: str | None = None) -> WithSmsForm:
        value = super().__new__(cls, text)
        value.sms = text if sms is None else sms
        return value


def _sms_form(value: Any) -> Any:
    return value.sms if isinstance(value, WithSmsForm) else value


_DICT_ATTRIBUTES = frozenset(dir(dict))


class _Sandbox(SandboxedEnvironment):
    """The sandbox, with `x.name` on a plain dict answered at once when `name` is one of its keys
    and no attribute of dict: the sandbox would ask for the attribute, fail (an exception, which
    is most of a plan's rendering time), then answer the item, exactly this."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


class _Part:
    """One compiled template with its globals gathered once: `render` is Template.render without
    gathering the globals (a chain of mappings) into each new context again; a plan renders
    thousands of messages."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.globals = dict(template.globals)

    def render(self, context: dict[str, Any]) -> str:
        template = self.template
        environment = template.environment
        state = environment.context_class(
            environment,
            {**self.globals, **context},
            template.name,
            template.blocks,
            globals=self.globals,
        )
        try:
            return str(environment.concat(template.root_render_func(state)))
        except Exception:
            environment.handle_exception()
        raise AssertionError("handle_exception always raises")  # pragma: no cover


# A folder where the compiled templates are also kept for other processes, when set: the first
# process to render the bundled playbook compiles its 171 templates (about a second of CPU), each
# later one reads them back. Only a folder no one else can write: its files are run as code.
CODE_FOLDER = "ARBOT_TEMPLATE_CODE"


class _CodeByText(BytecodeCache):
    """The code Jinja compiled for each template, by its name and text, shared by every sandbox
    of one kind (same autoescape and finalize, so the same code): compiling is about 4 ms a
    template, and taking the code back next to nothing. An included template is found by name
    when rendered, so a template's code never holds another's text. With CODE_FOLDER set, the
    code is also kept there, by kind, Jinja version and this module's set-up (`_setup`); Jinja
    checks the text and the Python version of what it reads back, and anything unreadable is
    compiled again."""

    LIMIT = 4096  # texts kept; a proposal brings a few

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._code: dict[tuple[str, str], CodeType] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        bucket.code = self._code.get((bucket.key, bucket.checksum))
        if bucket.code is None and (kept := self._kept(bucket)) is not None:
            try:
                with kept.open("rb") as file:  # Jinja takes it only if magic and checksum match
                    bucket.load_bytecode(file)
            except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
                bucket.reset()  # cut short or not Jinja's: compiled again, and kept anew
            if bucket.code is not None:
                self._remember(bucket.key, bucket.checksum, bucket.code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is None:
            return
        self._remember(bucket.key, bucket.checksum, bucket.code)
        kept = self._kept(bucket)
        if kept is None:
            return
        try:  # a file beside it renamed into place: other processes may read or write it now
            kept.parent.mkdir(parents=True, exist_ok=True)
            fd, scratch = tempfile.mkstemp(dir=kept.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as file:
                bucket.write_bytecode(file)
            os.replace(scratch, kept)
        except OSError:
            pass  # kept for this process only

    def _remember(self, key: str, checksum: str, code: CodeType) -> None:
        if len(self._code) >= self.LIMIT:
            self._code.clear()
        self._code[(key, checksum)] = code

    def _kept(self, bucket: Bucket) -> Path | None:
        folder = os.environ.get(CODE_FOLDER)
        if not folder:
            return None
        return (
            Path(folder)
            / f"jinja-{jinja2.__version__}-{_setup()}"
            / self.kind
            / f"{bucket.key}.code"
        )


@lru_cache(maxsize=1)
def _setup() -> str:
    """A digest of this module's text, where the sandboxes are set up (autoescape, finalize,
    filters): code that another arbot compiled under another setup is never read back, even in
    a folder kept across an upgrade (Jinja checks only the template's text)."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


_TEXT_CODE, _HTML_CODE, _SMS_CODE = _CodeByText("text"), _CodeByText("html"), _CodeByText("sms")


class _Compiled:
    """The sandboxes for one set of template texts, and each template compiled in them once."""

    def __init__(self, templates: dict[str, str]) -> None:
        common: dict[str, Any] = {
            "loader": DictLoader(templates),
            "undefined": StrictUndefined,
            "auto_reload": False,
        }
        self.text = _Sandbox(autoescape=False, bytecode_cache=_TEXT_CODE, **common)
        self.html = _Sandbox(autoescape=True, bytecode_cache=_HTML_CODE, **common)
        self.sms = _Sandbox(
            autoescape=False, finalize=_sms_form, bytecode_cache=_SMS_CODE, **common
        )
        self.names = sorted(templates)
        self.templates: dict[str, _Part] = {}
        # template -> the languages it is written in besides English ("polite/es/sms.txt.j2")
        found: dict[str, set[str]] = {}
        for key in templates:
            parts = key.split("/")
            if len(parts) == 3:
                found.setdefault(parts[0], set()).add(parts[1])
        self.languages: dict[str, frozenset[str]] = {
            name: frozenset(tags) for name, tags in found.items()
        }

    def template(self, name: str) -> _Part:
        compiled = self.templates.get(name)
        if compiled is None:
            if name.endswith(".html.j2"):
                env = self.html
            elif name.endswith("/sms.txt.j2"):
                env = self.sms
            else:
                env = self.text
            compiled = self.templates[name] = _Part(env.get_template(name))
        return compiled


@lru_cache(maxsize=16)
def _compiled(texts: frozenset[tuple[str, str]]) -> _Compiled:
    return _Compiled(dict(texts))


class Renderer:
    def __init__(self, templates: dict[str, str]) -> None:
        self._compiled = _compiled(frozenset(templates.items()))

    def compile_all(self) -> None:
        """Compile every template now (and keep its code in ARBOT_TEMPLATE_CODE when set, for the
        processes that render them next)."""
        for name in self._compiled.names:
            self._compiled.template(name)

    def languages(self, template: str) -> frozenset[str]:
        """The languages `template` is written in besides English."""
        return self._compiled.languages.get(template, frozenset())

    def language_for(self, template: str, tag: str | None) -> str | None:
        """The translation of `template` a reader of `tag` gets: the tag's own (`fr-CA`), else
        its language's (`fr`), else None, English."""
        if tag is None:
            return None
        written = self._compiled.languages.get(template)
        if not written:
            return None
        if tag in written:
            return tag
        base = tag.split("-", 1)[0]
        return base if base in written else None

    def render(
        self,
        template: str,
        context: dict[str, Any],
        channel: str | None = None,
        language: str | None = None,
    ) -> Rendered:
        """Every part, or only the parts one channel sends (`email` or `sms`), in `language` (one
        of `languages(template)`; None: English)."""
        email = channel in (None, "email")
        sms = channel in (None, "sms")
        folder = f"{template}/{language}" if language else template
        return Rendered(
            subject=" ".join(self._part(folder, "subject.txt.j2", context).split())
            if email
            else "",
            text=self._part(folder, "body.txt.j2", context).strip() + "\n" if email else "",
            html=self._part(folder, "body.html.j2", context).strip() + "\n" if email else "",
            sms=" ".join(self._part(folder, "sms.txt.j2", context).split()) if sms else "",
        )

    def _part(self, template: str, part: str, context: dict[str, Any]) -> str:
        name = f"{template}/{part}"
        try:
            return self._compiled.template(name).render(context)
        except TemplateError as exc:
            line = getattr(exc, "lineno", None)
            where = f" line {line}" if line else ""
            raise RenderError(f"template {name}{where}: {exc}") from None
        except Exception as exc:  # a template can raise anything: name the template, never hide it
            raise RenderError(f"template {name}: {type(exc).__name__}: {exc}") from None
