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


def _deep(value):
    if isinstance(value, str):
        return output_text(value)
    if isinstance(value, list):
        return [_deep(v) for v in value]
    if isinstance(value, dict):
        return {output_text(k): _deep(v) for k, v in value.items()}
    return value


def outputs(outs):
    """A cell's outputs (nbformat dicts) with every string in them made writable."""
    return [_deep(o) for o in outs]


def inert(nb, trusted=lambda cell: False):
    """``nb`` (a NotebookNode) with its active content removed, in place: scripts, event
    handlers and javascript: links out of HTML and Markdown outputs, every output type
    that could run code (JavaScript, SVG, widgets) dropped, and Markdown cells that are
    not ``trusted`` (the student's) sanitized the same way. Returns ``nb``."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    sanitizer = SanitizeHTML()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = sanitizer.sanitize_code_outputs(cell.get("outputs", []))
        elif cell.cell_type in ("markdown", "raw") and not trusted(cell):
            cell.source = sanitizer.sanitize_html_tags(cell.source)
    return nb
