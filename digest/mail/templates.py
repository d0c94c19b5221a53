"""Template loading: MJML compiled once per template into Jinja, with errors naming file and line.

Each ``.mjml`` template is compiled by mjml-python ONCE into HTML that still holds its Jinja
tags, then loaded as a Jinja2 template (autoescape on); ``.txt`` templates are plain Jinja for
the text/plain part. A folder given as ``DIGEST_TEMPLATES_DIR`` is searched before the shipped
``digest.templates`` package, for whole templates and ``mj-include`` partials alike.
"""

from __future__ import annotations

import os
import re
import textwrap
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import mjml

from digest.errors import DigestError

__all__ = ["PageTemplates", "TemplateSet", "compile_all", "template_source", "wrap_text"]

_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


def _locate(override_dir: Path | None, name: str) -> tuple[Traversable, str]:
    """Where template ``name`` is (the override folder first) and the filename errors show."""
    if override_dir and (override_dir / name).is_file():
        path = override_dir / name
        return path, str(path)
    shipped = resources.files("digest.templates").joinpath(name)
    if not shipped.is_file():
        raise DigestError(f"template not found: {name}")
    return shipped, f"templates/{name}"


def template_source(override_dir: Path | None, name: str) -> tuple[str, str]:
    """``(text, filename)`` of template ``name``: the one lookup of emails and web pages alike."""
    found, filename = _locate(override_dir, name)
    return found.read_text(encoding="utf-8"), filename


def _mtime(found: Traversable) -> float | None:
    try:
        return os.path.getmtime(str(found))
    except OSError:  # not a plain file (e.g. inside a zip): never reloaded
        return None


class PageTemplates:
    """The web pages (``templates/web/``), found like the emails' templates (override first).

    HTML and XML are autoescaped; a page whose file changes is reloaded on its next use.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = Path(override_dir) if override_dir else None
        self._env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load),
            autoescape=jinja2.select_autoescape(["html", "xml"], default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def _load(self, name: str) -> tuple[str, str, Any]:
        found, filename = _locate(self.override_dir, name)
        mtime = _mtime(found)
        text = found.read_text(encoding="utf-8")
        return text, filename, lambda: _mtime(found) == mtime

    def render(self, name: str, **context: Any) -> str:
        """Render page template ``name`` (e.g. ``web/archive/index.html``)."""
        return self._env.get_template(name).render(**context)


def wrap_text(text: str, width: int = 78, indent: str = "", first: str = "") -> str:
    """Wrap ``text`` at ``width`` columns without breaking words or URLs (text part)."""
    return textwrap.fill(
        str(text),
        width=width,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


class TemplateSet:
    """Loads templates (an override folder first, then the shipped ones) and compiles MJML once."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = Path(override_dir) if override_dir else None
        self.html_env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load_html),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.text_env = jinja2.Environment(
            loader=jinja2.FunctionLoader(self._load_text),
            autoescape=False,  # noqa: S701 - the text/plain part is not HTML
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.text_env.filters["wrap"] = wrap_text
        self._sources: dict[str, str] = {}  # template name -> its MJML source, for errors

    def source(self, name: str) -> tuple[str, str]:
        """``(text, filename)`` of template ``name``, from the override folder when it has it."""
        return template_source(self.override_dir, name)

    def mtimes(self) -> tuple[float, ...]:
        """Modification times of every template file (the preview server reloads on change)."""
        folders = [Path(str(resources.files("digest.templates")))]
        if self.override_dir and self.override_dir.is_dir():
            folders.append(self.override_dir)
        return tuple(p.stat().st_mtime for f in folders for p in sorted(f.glob("*.*")))

    def _check_syntax(self, text: str, name: str, filename: str) -> None:
        try:
            self.html_env.parse(text, name, filename)
        except jinja2.TemplateSyntaxError as exc:
            raise DigestError(f"{filename}, line {exc.lineno}: {exc.message}") from None

    def _include(self, path: str) -> str:
        text, filename = self.source(path)
        self._check_syntax(text, path, filename)
        return text

    def _load_html(self, name: str) -> tuple[str, str, Any]:
        text, filename = self.source(name)
        self._check_syntax(text, name, filename)
        try:
            html = mjml.mjml2html(text, include_loader=self._include, fonts={})
        except DigestError:
            raise
        except Exception as exc:  # mjml-python raises ValueError/RuntimeError without a line
            raise DigestError(f"{filename}: not valid MJML: {exc}") from None
        self._sources[name] = text
        return _finish_head(_restore_section_width(html, text)), filename, lambda: True

    def _load_text(self, name: str) -> tuple[str, str, Any]:
        text, filename = self.source(name)
        return text, filename, lambda: True

    def render(self, kind: str, name: str, context: dict[str, Any]) -> str:
        """Render ``name`` (kind "html" or "text"); any template error names file and line."""
        env = self.html_env if kind == "html" else self.text_env
        try:
            return env.get_template(name).render(context)
        except DigestError:
            raise
        except jinja2.TemplateSyntaxError as exc:  # also unknown filters, found at compile time
            filename = exc.filename or name
            raise DigestError(
                f"{filename}{self._where(name, kind, exc.lineno)}: {exc.message}"
            ) from None
        except jinja2.TemplateError as exc:
            tb: TracebackType | None = exc.__traceback__
            filename, lineno = name, None
            while tb is not None:  # the innermost template frame
                if tb.tb_frame.f_code.co_filename.endswith((".mjml", ".txt")):
                    filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
                tb = tb.tb_next
            raise DigestError(f"{filename}{self._where(name, kind, lineno)}: {exc}") from None

    def _where(self, name: str, kind: str, lineno: int | None) -> str:
        """``, line N`` in the template source (compiled MJML lines mapped back to the .mjml)."""
        if lineno is None:
            return ""
        if kind == "html" and name in self._sources:
            compiled = self.html_env.loader.get_source(self.html_env, name)[0].split("\n")
            source_lines = self._sources[name].split("\n")
            tags = _JINJA_TAG.findall(compiled[lineno - 1]) if lineno <= len(compiled) else []
            lineno = next(
                (i for tag in tags for i, line in enumerate(source_lines, 1) if tag in line),
                lineno,
            )
        return f", line {lineno}"


def _template_names(override_dir: Path | None) -> list[str]:
    """Every template there is: the shipped ones and the override folder's, web pages too."""
    names: set[str] = set()
    folders: list[Traversable] = [resources.files("digest.templates")]
    if override_dir and override_dir.is_dir():
        folders.append(override_dir)
    for folder in folders:
        names |= {f.name for f in folder.iterdir() if f.name.endswith((".mjml", ".txt"))}
        web = folder / "web"
        if web.is_dir():
            names |= {f"web/{f.name}" for f in web.iterdir() if f.is_file()}
    return sorted(names)


def compile_all(override_dir: Path | None) -> int:
    """Compile every template, the override folder's first; returns how many.

    Raises DigestError naming the file and line of the first one that does not compile.
    MJML partials (``_head.mjml`` ...) are compiled inside the emails that include them.
    """
    emails, pages = TemplateSet(override_dir), PageTemplates(override_dir)
    count = 0
    for name in _template_names(override_dir):
        if name.endswith(".mjml") and name.startswith("_"):
            continue
        env = (
            pages._env
            if name.startswith("web/")
            else emails.html_env
            if name.endswith(".mjml")
            else emails.text_env
        )
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise DigestError(f"{exc.filename or name}, line {exc.lineno}: {exc.message}") from None
        count += 1
    return count


_BODY_WIDTH = re.compile(r'<mj-body[^>]*\swidth="(\d+)px"')
# The outer <div> MJML writes for a section: centred, and capped at the body width...
_SECTION_DIV = re.compile(r'(<div(?: class="[^"]*")? style="[^"]*?margin:0px auto;)(">)')


def _restore_section_width(html: str, source: str) -> str:
    """Cap sections that came from ``mj-include`` at the body width again.

    mjml-python drops ``max-width`` from sections it reads through an include, so on a
    screen wider than the email (a desktop client, the "view in browser" page) the included
    header spread across the whole window while the rest stayed 600 px wide.
    """
    match = _BODY_WIDTH.search(source)
    width = match.group(1) if match else "600"
    return _SECTION_DIV.sub(rf"\1max-width:{width}px;\2", html)


def _finish_head(html: str) -> str:
    """Use the short HTML5 charset declaration MJML leaves out."""
    old = '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
    if old in html:
        return html.replace(old, '<meta charset="utf-8">', 1)
    return html.replace("<head>", '<head><meta charset="utf-8">', 1)
