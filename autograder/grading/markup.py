"""The instructor's comments as HTML: Markdown, with $...$ and $$...$$ math as MathML.

The formgrader takes comments as Markdown with math. A feedback page shows them the same
way without any script: math is converted to MathML when the page is written
(``latex2mathml``), which browsers render natively, and the Markdown goes through
nbconvert's renderer and sanitizer (the ones ``clean`` uses for the students' Markdown).
"""
from __future__ import annotations

import html
import re
import secrets

# $$display$$ first, then $inline$ (not an escaped \$, not empty, not spanning paragraphs)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$", re.S)


def _mathml(tex, display):
    from latex2mathml.converter import convert

    try:
        return convert(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - TeX it cannot read is shown as it was typed
        return f"<code>{html.escape(tex)}</code>"


def comment_html(text):
    """``text`` (Markdown with math) as a sanitized HTML fragment in a <div class='comment'>."""
    from .clean import html_sanitizer, safe_markdown

    maths, token = [], secrets.token_hex(8)

    def stash(m):
        maths.append(_mathml(m.group(1) if m.group(1) is not None else m.group(2), m.group(1) is not None))
        return f"MATH{token}N{len(maths) - 1}E"

    body = safe_markdown(_MATH.sub(stash, text), html_sanitizer())
    body = re.sub(f"MATH{token}N(\\d+)E", lambda m: maths[int(m.group(1))], body)
    return f"<div class='comment'>{body}</div>"
