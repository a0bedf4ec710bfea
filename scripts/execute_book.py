"""Execute the book's chapters in parallel, into the cache that jupyter-book reads.

jupyter-book 1 executes a chapter when Sphinx reads it, one chapter after another. `make book`
runs this first: every chapter whose code is not in the execution cache (jupyter-cache, the
cache jupyter-book's `execute_notebooks: cache` uses) runs in a pool of worker processes,
longest first by its last recorded run time (a chapter never run here: by the seconds
`book/execution_seconds.json` records for it from a cold build, else the later ones first), with
jupyter-cache's own worker (the one its `local-parallel` executor uses), each in its own
folder as jupyter-book would run it. The build that follows finds every chapter cached; a
chapter that failed here is run again by the build, which reports its error as usual.

    python scripts/execute_book.py [--workers N] [CHAPTER.md ...]

Named chapters limit the run to those (when they are stale); by default every stale chapter runs.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

import yaml
from jupyter_cache import get_cache
from jupyter_cache.executors.basic import ExecutionWorkerLocalMProc, ProcessData
from myst_nb.core.read import is_myst_markdown_notebook, myst_nb_reader_plugin

from autograder.grading.kernel import thread_env, threads_per_job

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path("_build") / ".jupyter_cache"  # where `jupyter-book build . --path-output .` keeps it
READ_DATA = {"type": "plugin", "name": "myst_nb_md"}  # the reader myst-nb records for a .md page
UNKNOWN = float("inf")  # chapters never run before go first, the later (larger) ones first
# seconds each chapter took in a cold build on 2 cores, beside another chapter: on a fresh
# machine (CI) there is no cache to learn from, and starting the longest chapter last costs
# the build minutes; a stale figure only changes the order
HINTS = Path("book") / "execution_seconds.json"


def chapters(root=ROOT):
    """The toc's pages that are notebooks (MyST Markdown with a kernel), in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    paths = [root / f"{f}.md" for f in files]
    return [p for p in paths if p.exists() and is_myst_markdown_notebook(p.read_text("utf8"))]


def last_seconds(cache):
    """{uri: execution seconds of its most recent cached run}."""
    seconds = {}
    for record in sorted(cache.list_cache_records(), key=lambda r: r.created):
        seconds[record.uri] = record.data.get("execution_seconds", UNKNOWN)
    return seconds


def hinted_seconds(root):
    """{uri: seconds} from HINTS (chapter paths relative to the root), {} when there is none."""
    path = root / HINTS
    if not path.exists():
        return {}
    return {str(root / name): float(sec) for name, sec in json.loads(path.read_text()).items()}


def stale(cache, paths):
    """The paths whose code cells have no executed notebook in the cache."""
    missing = []
    for path in paths:
        try:
            cache.match_cache_notebook(myst_nb_reader_plugin(str(path)))
        except KeyError:
            missing.append(path)
    return missing


def _set_env(env):
    """A worker's start: the environment its chapters' kernels inherit."""
    os.environ.update(env)


def main(argv=None, root=ROOT):
    """Run the stale chapters of the book at ``root``; 0 (failures are left to the build)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="chapters run at once (default: the number of CPUs)")
    p.add_argument("only", nargs="*", type=Path, metavar="CHAPTER.md",
                   help="run only these chapters (paths to the toc's .md files)")
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error(f"--workers must be a positive integer, got {args.workers}")
    config = yaml.safe_load((root / "_config.yml").read_text()).get("execute", {})
    if config.get("execute_notebooks") != "cache":
        print("execute_book: _config.yml does not use the execution cache; nothing to do")
        return 0

    cache = get_cache(str(root / CACHE))
    pages = chapters(root)
    if args.only:
        wanted = {path.resolve() for path in args.only}
        unknown = wanted - set(pages)
        if unknown:
            p.error("not a chapter of the toc: " + ", ".join(map(str, sorted(unknown))))
        pages = [path for path in pages if path in wanted]
    todo = stale(cache, pages)
    if not todo:
        print("execute_book: every chapter is in the execution cache")
        return 0
    before = hinted_seconds(root) | last_seconds(cache)
    order = {path: i for i, path in enumerate(todo)}
    todo.sort(key=lambda path: (before.get(str(path), UNKNOWN), order[path]), reverse=True)
    jobs = [ProcessData(cache.add_nb_to_project(str(path), read_data=READ_DATA).pk, str(path),
                        cache, config.get("timeout", 30), config.get("allow_errors", False))
            for path in todo]
    workers = min(args.workers, len(jobs))
    # the workers' kernels inherit this: the cores shared out among the chapters, since two
    # chapters with a thread per core each spin-wait for each other (unless the environment says)
    threads = {k: os.environ.get(k, v) for k, v in thread_env(threads_per_job(workers)).items()}
    print(f"execute_book: {len(jobs)} chapter(s) on {workers} worker(s): "
          + ", ".join(path.stem for path in todo)
          + f" ({threads['OMP_NUM_THREADS']} numeric-library thread(s) each)", flush=True)
    start = time.perf_counter()
    failed = []
    # one chapter per task, so that a free worker takes the next longest at once
    with multiprocessing.Pool(workers, initializer=_set_env, initargs=(threads,)) as pool:
        for status, uri in pool.imap_unordered(ExecutionWorkerLocalMProc(), jobs, chunksize=1):
            name = Path(uri).stem
            print(f"execute_book: {name} {'failed' if status else 'executed'} "
                  f"at {time.perf_counter() - start:.0f} s", flush=True)
            if status:
                failed.append(name)
                traceback = cache.get_project_record(uri).traceback or "(no traceback recorded)"
                print(traceback[-4000:], flush=True)
    if failed:
        print("execute_book: the build runs these again and reports their errors: "
              + ", ".join(failed), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
