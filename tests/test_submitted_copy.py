"""When a submission was made: nbgrader's own timestamp.txt when collect left one beside the
notebook, else the notebook's modification time; a file that is not a time is ignored."""
import datetime as dt
import os

from autograder.grading.classroom import NBGRADER_TIME, _submitted_at


def test_the_submission_time_comes_from_nbgrader_then_from_the_file(tmp_path):
    nb = tmp_path / "lstm.ipynb"
    nb.write_text("{}")
    os.utime(nb, (1_700_000_000, 1_700_000_000))
    assert _submitted_at(nb) == dt.datetime(2023, 11, 14, 22, 13, 20)
    (tmp_path / "timestamp.txt").write_text("2026-03-01 09:30:00.500000 UTC\n")
    assert _submitted_at(nb) == dt.datetime(2026, 3, 1, 9, 30, 0, 500000)
    when = dt.datetime(2025, 1, 2, 3, 4, 5, 6)
    (tmp_path / "timestamp.txt").write_text(when.strftime(NBGRADER_TIME))  # what we write back
    assert _submitted_at(nb) == when
    (tmp_path / "timestamp.txt").write_text("yesterday-ish, honest")
    assert _submitted_at(nb) == dt.datetime(2023, 11, 14, 22, 13, 20)
