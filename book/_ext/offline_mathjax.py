"""Serve MathJax 3 from the files of the PyPI package django-static-mathjax, not from a CDN.

The files are copied to ``_mathjax/`` in the HTML output (not into ``_static/``, because
Jupyter Book loads every .js file under _static on every page).
"""
import shutil
from importlib import resources
from pathlib import Path

TARGET = "_mathjax"


def _source():
    return Path(str(resources.files("mathjax") / "static" / "mathjax" / "es5"))


def _set_path(app, config):
    config.mathjax_path = f"../{TARGET}/tex-chtml.js"  # Sphinx puts relative paths under _static/


def _copy(app, exception):
    if exception is None and app.builder.format == "html":
        dest = Path(app.outdir) / TARGET
        if not (dest / "tex-chtml.js").exists():
            shutil.copytree(_source(), dest, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", _set_path)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
