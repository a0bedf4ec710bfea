"""Text and notebooks from a submission, made safe to store, print and show.

Whatever a kernel sends (outputs, exception texts) and whatever a class folder holds
(student ids) reaches files, a database, the instructor's terminal and browser. A lone
surrogate cannot be written as UTF-8 (``nbformat.write`` raised on one, and stopped the
run), a NUL is refused by PostgreSQL, escape codes drive the terminal, and a script in a
notebook output runs in the formgrader's page. So: ``text`` for anything stored or shown,
``ident`` for ids, ``outputs`` for a cell's outputs, ``inert`` for a notebook the
instructor opens (nbconvert's own sanitizer, the one nbviewer uses).
"""
from __future__ import annotations

import re
import unicodedata

_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_surrogates(s):
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        # a pair written as two code points is joined; a lone one becomes U+FFFD
        return _SURROGATE.sub("\ufffd", s.encode("utf-16", "surrogatepass")
                              .decode("utf-16", "replace"))


def _controls(keep):
    drop = [c for c in range(0x20) if chr(c) not in keep] + [0x7F] + list(range(0x80, 0xA0))
    return {c: None for c in drop}


_TEXT = _controls("\n\t")
_OUTPUT = _controls("\n\t\r\x1b")  # notebook outputs keep ANSI colours and progress bars


def text(s, limit=None):
    """``s`` as a str that any file, database and terminal takes: lone surrogates replaced,
    control characters (but newline and tab) removed; cut at ``limit`` characters."""
    s = _no_surrogates(str(s)).translate(_TEXT)
    return s if limit is None or len(s) <= limit else s[:limit] + " ..."


def output_text(s):
    """A notebook output's text: as ``text``, but ANSI escapes and carriage returns kept
    (nbconvert and the formgrader render them as colours, never as commands)."""
    return _no_surrogates(str(s)).translate(_OUTPUT)


def ident(s):
    """A student id fit for a table, a path and a database: ``text`` without line breaks,
    tabs or invisible format characters (bidirectional overrides, zero-width joiners)."""
    s = _no_surrogates(str(s)).translate(_controls(""))
    return "".join(ch for ch in s if unicodedata.category(ch) not in ("Cf", "Co", "Cn")).strip()


def unicode(s):
    """``s`` with every lone surrogate replaced by U+FFFD (nothing else changed): what a
    student's code and notes need before they can be sent to a kernel or written."""
    return _no_surrogates(s)


def _strings(value, fn):
    """A JSON-like tree with ``fn`` applied to every string in it, keys included."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [_strings(v, fn) for v in value]
    if isinstance(value, dict):
        return type(value)((fn(k), _strings(v, fn)) for k, v in value.items())
    return value


def unicode_tree(value):
    """A JSON-like tree with ``unicode`` applied to every string in it, keys included."""
    return _strings(value, _no_surrogates)


def outputs(outs):
    """A cell's outputs (nbformat dicts) with every string in them made writable."""
    return [_strings(o, output_text) for o in outs]


# what a sanitized page keeps of HTML: text structure, tables, links (http, https, mailto)
_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1",
         "h2", "h3", "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong",
         "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"]
_ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"], "td": ["colspan", "rowspan"],
               "th": ["colspan", "rowspan"]}


def html_sanitizer():
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    return SanitizeHTML(tags=_TAGS, attributes=_ATTRIBUTES, strip=True)


def safe_markdown(source, sanitizer):
    """Markdown as the formgrader would render it (nbconvert's renderer), then sanitized:
    a link whose target is ``javascript:`` survives Markdown, but not the sanitizer."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return sanitizer.sanitize_html_tags(markdown2html_mistune(source))


def inert(nb, trusted=lambda cell: False):
    """``nb`` (a NotebookNode) with its active content removed, in place, so that opening
    it in the formgrader runs nothing of the student's: HTML outputs sanitized (nbconvert's
    sanitizer, the one nbviewer uses), every output type that could run code (JavaScript,
    SVG, widgets) dropped, Markdown outputs and the Markdown cells that are not ``trusted``
    (the student's) rendered and sanitized. Every string is made writable. Returns ``nb``."""
    sanitizer = html_sanitizer()
    for cell in nb.cells:
        cell.source = unicode(cell.source)
        if cell.cell_type == "code":
            outs = outputs(cell.get("outputs", []))
            for out in outs:
                data = out.get("data")
                if isinstance(data, dict) and isinstance(data.get("text/markdown"), str):
                    data.setdefault("text/html", safe_markdown(data.pop("text/markdown"),
                                                                sanitizer))
            cell.outputs = sanitizer.sanitize_code_outputs(
                [nbformat_node(o) for o in outs])
        elif cell.cell_type in ("markdown", "raw") and not trusted(cell):
            cell.source = safe_markdown(cell.source, sanitizer)
    return nb


def nbformat_node(value):
    """A dict as nbformat's NotebookNode (attribute access, as nbconvert expects)."""
    from nbformat import from_dict

    return from_dict(value)
