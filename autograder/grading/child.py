"""The child process that executes one submission: python -m autograder.grading.child IN OUT
CELL_TIMEOUT WORKDIR.

It saves the notebook after every cell (atomically), so that whatever the parent has to
kill, the cells run so far still count; status.json beside OUT says why a run stopped early.
"""
import json
import os
import sys
from pathlib import Path

import nbformat

from coursekit.notebook import execute


def main(src, out, cell_timeout, workdir):
    """Execute notebook ``src`` in ``workdir``, saving the progress to ``out`` after each cell."""
    out = Path(out)
    nb = nbformat.read(src, as_version=4)

    def save(nb, index):
        tmp = out.with_suffix(".partial")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, out)

    save(nb, -1)
    stopped = execute(nb, workdir, int(cell_timeout), after_cell=save)
    save(nb, len(nb.cells))
    (out.parent / "status.json").write_text(json.dumps({"stopped": stopped or ""}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
