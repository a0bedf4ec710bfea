"""Make the built book work with no network.

- MathJax 3 is served from the files of the PyPI package django-static-mathjax, copied to
  ``_mathjax/`` in the HTML output (not into ``_static/``: Jupyter Book loads every .js file
  under _static on every page).
- Thebe (live code through a remote Binder kernel) is dropped: it loads a script from a CDN
  and Jupyter Book 1 declares its globals twice, which is a JavaScript error on every page.
"""
import shutil
from importlib import resources
from pathlib import Path

TARGET = "_mathjax"


def _mathjax_source():
    return Path(str(resources.files("mathjax") / "static" / "mathjax" / "es5"))


def _set_mathjax_path(app, config):
    config.mathjax_path = f"../{TARGET}/tex-chtml.js"  # Sphinx puts relative paths under _static/


def _drop_thebe(app, pagename, templatename, context, doctree):
    def keep(asset):
        name = str(getattr(asset, "filename", asset) or "")
        body = str(getattr(asset, "attributes", {}).get("body", ""))
        return "thebe" not in name and "THEBE_JS_URL" not in body

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if keep(a)]


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        dest = Path(app.outdir) / TARGET
        if not (dest / "tex-chtml.js").exists():
            shutil.copytree(_mathjax_source(), dest, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _set_mathjax_path)
    app.connect("html-page-context", _drop_thebe)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
