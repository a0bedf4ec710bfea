"""scripts/execute_book.py, which `make book` runs before jupyter-book: on a two-chapter book,
the chapters run in parallel into the cache in the form myst-nb looks them up, a second run
finds nothing to do, and a failing chapter is reported with its traceback and left to the
build."""
import importlib.util
import os
from pathlib import Path

import pytest
from jupyter_cache import get_cache
from myst_nb.core.read import myst_nb_reader_plugin

ROOT = Path(__file__).resolve().parents[1]
FRONT = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def load_script():
    spec = importlib.util.spec_from_file_location("execute_book", ROOT / "scripts" / "execute_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapter(body):
    return FRONT + "# A chapter\n\n```{code-cell} ipython3\n" + body + "\n```\n"


@pytest.fixture
def book(tmp_path):
    (tmp_path / "_config.yml").write_text("execute:\n  execute_notebooks: cache\n  timeout: 60\n")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: Part\n    chapters:\n"
        "      - file: one\n      - file: two\n      - file: notes\n")
    (tmp_path / "intro.md").write_text("# Not a notebook\n")
    (tmp_path / "notes.md").write_text("# Plain Markdown, no kernel\n")
    (tmp_path / "one.md").write_text(chapter("print(6 * 7)"))
    (tmp_path / "two.md").write_text(chapter("import os\nprint(os.getcwd())"))
    return tmp_path


def test_chapters_run_into_the_cache_as_myst_nb_reads_them(book, capsys):
    script = load_script()
    assert [p.name for p in script.chapters(book)] == ["one.md", "two.md"]
    assert script.main(["--workers", "2"], root=book) == 0
    out = capsys.readouterr().out
    assert "2 chapter(s) on 2 worker(s)" in out and "failed" not in out
    cache = get_cache(str(book / "_build" / ".jupyter_cache"))
    for name, printed in (("one.md", "42"), ("two.md", str(book))):
        record = cache.match_cache_notebook(myst_nb_reader_plugin(str(book / name)))
        nb = cache.get_cache_bundle(record.pk).nb
        assert nb.cells[-1].outputs[0]["text"].strip() == printed  # run in the chapter's folder
    assert script.main([], root=book) == 0
    assert "every chapter is in the execution cache" in capsys.readouterr().out


def test_the_chapters_share_the_cores_out(book, capsys, monkeypatch):
    """Two chapters at once: each kernel starts cores / 2 numeric-library threads (a thread per
    core each would spin-wait), unless the environment says; this process's is untouched."""
    from autograder.grading.kernel import THREAD_VARIABLES, threads_per_job

    for k in THREAD_VARIABLES:
        monkeypatch.delenv(k, raising=False)
    probe = "import os, torch\nprint(os.environ['OPENBLAS_NUM_THREADS'], torch.get_num_threads())"
    (book / "one.md").write_text(chapter(probe))
    script = load_script()
    assert script.main(["--workers", "2"], root=book) == 0
    n = threads_per_job(2)
    assert f"({n} numeric-library thread(s) each)" in capsys.readouterr().out
    cache = get_cache(str(book / "_build" / ".jupyter_cache"))
    record = cache.match_cache_notebook(myst_nb_reader_plugin(str(book / "one.md")))
    assert cache.get_cache_bundle(record.pk).nb.cells[-1].outputs[0]["text"] == f"{n} {n}\n"
    assert not any(k in os.environ for k in THREAD_VARIABLES)


def test_a_failing_chapter_is_reported_and_left_to_the_build(book, capsys):
    (book / "two.md").write_text(chapter("raise RuntimeError('the claim no longer holds')"))
    script = load_script()
    assert script.main(["--workers", "1", str(book / "two.md")], root=book) == 0
    out = capsys.readouterr().out
    assert "two failed" in out and "the claim no longer holds" in out
    assert script.stale(get_cache(str(book / "_build" / ".jupyter_cache")),
                        script.chapters(book)) == [book / "one.md", book / "two.md"]


def test_bad_arguments_are_named(book, capsys):
    script = load_script()
    with pytest.raises(SystemExit):
        script.main(["--workers", "0"], root=book)
    assert "--workers must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(book / "intro.md")], root=book)
    assert "not a chapter of the toc" in capsys.readouterr().err


def test_longest_first_by_the_last_run_and_later_chapters_first_when_never_run(book, capsys):
    script = load_script()
    # a margin over the noise of a kernel start on a loaded machine (1.5 s was not: CI shares 2 cores)
    (book / "one.md").write_text(chapter("import time\ntime.sleep(6)"))
    script.main(["--workers", "1"], root=book)
    assert "2 chapter(s) on 1 worker(s): two, one" in capsys.readouterr().out  # never run
    for name in ("one.md", "two.md"):  # change both: both stale, both with a recorded time
        (book / name).write_text((book / name).read_text()[:-len("```\n")] + "print()\n```\n")
    script.main(["--workers", "1"], root=book)
    assert "2 chapter(s) on 1 worker(s): one, two" in capsys.readouterr().out  # one took longer


def test_never_run_chapters_follow_the_recorded_cold_build_seconds(book, capsys):
    (book / "book").mkdir()
    (book / "book" / "execution_seconds.json").write_text('{"one.md": 300, "two.md": 20}')
    load_script().main(["--workers", "1"], root=book)
    assert "2 chapter(s) on 1 worker(s): one, two" in capsys.readouterr().out  # the hint, not the toc


def test_the_recorded_seconds_name_every_chapter_of_the_book():
    import json
    script = load_script()
    hints = json.loads((script.ROOT / script.HINTS).read_text())
    names = {str(p.relative_to(script.ROOT)) for p in script.chapters()}
    assert set(hints) == names, \
        f"book/execution_seconds.json: chapters without a figure {sorted(names - set(hints))}, " \
        f"figures for no chapter {sorted(set(hints) - names)}"
    assert all(sec > 0 for sec in hints.values())


def test_nothing_to_do_without_the_execution_cache(book, capsys):
    (book / "_config.yml").write_text("execute:\n  execute_notebooks: force\n")
    assert load_script().main([], root=book) == 0
    assert "does not use the execution cache" in capsys.readouterr().out
    assert not (book / "_build").exists()


def test_make_book_reads_every_page_again_after_the_toc_changed(tmp_path):
    """A new chapter in _toc.yml changes every page's sidebar: `make book` passes --all to
    jupyter-book when _toc.yml or _config.yml is newer than the built book, else not."""
    import os
    import shutil
    import subprocess

    for name in ("Makefile", "_toc.yml", "_config.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / ".installed-stamp").touch()
    (tmp_path / "_build" / "html").mkdir(parents=True)
    index = tmp_path / "_build" / "html" / "index.html"
    index.touch()

    def build_command(toc_age):
        os.utime(tmp_path / "pyproject.toml", (1, 1))
        os.utime(tmp_path / "_config.yml", (1, 1))
        os.utime(tmp_path / "_toc.yml", (1000 + toc_age, 1000 + toc_age))
        os.utime(index, (1000, 1000))
        out = subprocess.run(["make", "-n", "book"], cwd=tmp_path, capture_output=True,
                             text=True, check=True).stdout
        return next(line for line in out.splitlines() if "jupyter-book build" in line)

    assert build_command(toc_age=+10).endswith("--all")
    assert not build_command(toc_age=-10).endswith("--all")
