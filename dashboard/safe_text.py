"""The one way to draw untrusted text (user ids, session ids, names, URL parameters, messages
that quote input) in anything Streamlit renders as markdown.

Streamlit's markdown is rich: links and images (the browser fetches them), autolinked URLs,
raw-HTML-looking tags, LaTeX between ``$``, emoji shortcodes (``:x:``), colour directives
(``:red[...]``) and icons (``:material/...:``). Backslash escapes cannot stop all of these
(emoji and autolinks are found in the text *after* escapes are undone), so a value is drawn as
an inline code span, where nothing is interpreted, with a fence longer than any run of
backticks inside it and line breaks shown as ``⏎`` (a blank line would end the span).

A sentence the program wrote but read back from the store may use :func:`prose`: plain text
when it holds nothing markdown could render, else a code span.

Use :func:`fmt` to build a message (a literal template with ``{name}`` fields; each value is
made literal), :func:`value` for a single value, and :func:`message` for a whole string that
may quote input (an exception's text). A value the program itself wrote (not data) may be
passed to :func:`fmt` as ``Markdown(text)`` to keep its formatting.
``tests/dashboard/test_markdown_lint.py`` fails when a markdown-rendering call gets anything
else than a literal or one of these.
"""

from __future__ import annotations

import numbers
import re
import string
from typing import Any

import numpy as np

_BREAKS = re.compile(r"\r\n|\r|\n|\u2028|\u2029")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MAX_CHARS = 2_000


class Markdown(str):
    """A markdown string whose untrusted parts were made literal."""


def value(item: Any, *, limit: int = _MAX_CHARS) -> Markdown:
    """``item`` as a literal inline code span (nothing in it is rendered)."""
    text = str(item)
    if len(text) > limit:
        text = text[:limit] + "…"
    text = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", _BREAKS.sub(" ⏎ ", text))
    if not text:
        return Markdown('""')
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return Markdown(f"{fence} {text} {fence}")


_PROSE = re.compile(r"[A-Za-z0-9 ,.;:()%+\-'’×·–—]*")
_PROSE_RISKS = re.compile(r":(?!\s)|\.[A-Za-z]|^\s*(?:[-+]|\d+[.)])(?:\s|$)|www", re.IGNORECASE)


def prose(item: Any, *, limit: int = _MAX_CHARS) -> Markdown:
    """A sentence the program wrote that comes back from the store (a model's default-threshold
    source), as plain text when nothing in it can render: only letters, digits, spaces and
    ``,.;:()%+-'`` (no ``*_[]<>`$~#|\\@/&!``), no colon unless a space follows (emoji,
    icons, colours), no dot before a letter and no ``www`` (autolinks), no list marker in front.
    Anything else is drawn as :func:`value` draws it."""
    text = str(item)
    if len(text) <= limit and _PROSE.fullmatch(text) and not _PROSE_RISKS.search(text):
        return Markdown(text)
    return value(text, limit=limit)


def message(text: Any) -> Markdown:
    """A whole message that may quote input (an exception's text), drawn literally."""
    return value(text, limit=10_000)


def fmt(template: str, /, **values: Any) -> Markdown:
    """``template`` (trusted markdown, a literal) with each ``{name}`` or ``{name:spec}`` field
    filled by ``values[name]``, formatted by ``spec`` and made literal. Numbers (not bools) stay
    plain text: a formatted number cannot carry markup."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if not name or not name.isidentifier():
            raise ValueError(f"template fields must be named, got {{{name}}} in {template!r}")
        item = values[name]
        if isinstance(item, Markdown):  # already safe (a program literal marked as such)
            out.append(item)
            continue
        if conversion:
            item = {"r": repr, "s": str, "a": ascii}[conversion](item)
        if isinstance(item, numbers.Real) and not isinstance(item, bool | np.bool_):
            out.append(format(item, spec))  # digits, separators, signs: nothing to render
        else:
            out.append(value(format(item, spec) if spec else item))
    return Markdown("".join(out))


def join(parts: list[Markdown | str], sep: str = "") -> Markdown:
    """Join already safe parts (each a literal or the result of a function here)."""
    return Markdown(sep.join(parts))
