#!/usr/bin/env bash
# The instructor's guide's formgrader screenshots, made by the browser test that walks the
# term (tests/test_formgrader.py::test_the_term_in_the_formgrader), never by hand:
#   scripts/formgrader_screenshots.sh      (from the repository root, after make test)
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f book/images/formgrader-*.png
AUTOGRADER_SCREENSHOTS="$PWD/book/images" .venv/bin/python -m pytest -q \
    "tests/test_formgrader.py::test_the_term_in_the_formgrader"
rm -f book/images/formgrader-4-*.png  # a log in a dialog: not shown in the guide
ls book/images/formgrader-*.png
