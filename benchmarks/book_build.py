"""The book's build times: a cold build, then a rebuild with nothing changed, side by side.

Copies the tracked files of the repository into a fresh folder (no _build/, no
.jupyter_cache/: every chapter executes), builds it as ``make book`` does (the chapters in
parallel, then jupyter-book with its flags), then builds it again unchanged (jupyter-book's execution cache and Sphinx's environment should
make the second build do almost nothing), and prints both wall times and their ratio.

    python benchmarks/book_build.py [--keep]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 10.0  # a no-change rebuild at least 10 times faster than a cold build


def build(folder):
    """Run ``make book``'s commands on ``folder``; (seconds, log). Raises on failure."""
    jb = Path(sys.executable).with_name("jupyter-book")
    commands = [[sys.executable, str(folder / "scripts" / "execute_book.py")],
                [str(jb), "build", str(folder), "--path-output", str(folder), "-W", "-n", "--keep-going"]]
    t0 = time.perf_counter()
    log = ""
    for cmd in commands:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        log += proc.stdout
        if proc.returncode != 0:
            raise SystemExit(f"build failed in {folder}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - t0, log


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="keep the copy (its path is printed)")
    args = p.parse_args()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    tmp = Path(tempfile.mkdtemp(prefix="book-bench-"))
    copy = tmp / "course"
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / f)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"copy of {len(files) - 1} tracked files in {copy}")
    cold, _ = build(copy)
    print(f"cold build (every chapter executed):  {cold:8.1f} s")
    warm, log = build(copy)
    executed = log.count("Executing notebook using")
    print(f"no-change rebuild:                    {warm:8.1f} s  ({executed} notebooks executed)")
    ratio = cold / warm
    print(f"ratio cold / no-change: {ratio:.1f}x (target >= {TARGET:g}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'})")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
