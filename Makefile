# One entry point. `make book` builds the book into _build/html; `make test` runs every test,
# `make check` all but the slow ones.
# Both create .venv at the repo root on first use and reuse it afterwards; pins live in
# pyproject.toml only.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: book test check bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# the chapters run in parallel first (scripts/execute_book.py), so the build finds them cached;
# a changed toc or configuration changes every page (the sidebar), which Sphinx alone would
# not rewrite: then every page is read again (--all; the chapters stay cached)
BOOK_ALL = $(if $(shell find _toc.yml _config.yml -newer _build/html/index.html 2>/dev/null),--all)
book: $(STAMP)
	$(PY) scripts/execute_book.py
	$(VENV)/bin/jupyter-book build . --path-output . -W -n --keep-going $(BOOK_ALL)

test: $(STAMP)
	$(PY) -m pytest

# the edit-test loop: everything but the slow tests (tests/conftest.py lists them)
check: $(STAMP)
	$(PY) -m pytest -m "not slow" -q

bench: $(STAMP)
	$(PY) benchmarks/lstm_numpy_vs_torch.py
	$(PY) benchmarks/word2vec_vs_gensim.py
	$(PY) benchmarks/grading.py
	$(PY) benchmarks/book_build.py
	$(PY) benchmarks/oversubscription.py

clean:
	rm -rf _build .jupyter_cache
