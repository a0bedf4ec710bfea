"""The eight assignments as students and instructors meet them, through the real commands.

- exercises/ is what `autograder release` makes of solutions/ (a stale release fails);
- the student bundle holds the released notebooks and coursekit, and no solution, hidden
  test or reference code, and the visible tests run with the bundle alone;
- graded through `autograder grade`, every solution notebook scores full marks and every
  released notebook scores 0;
- a class of submissions with mistakes loses exactly the points of the mistaken functions,
  in the JSON and in the CSV export.
"""
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import checks
from autograder.cli import main
from autograder.grading import notebooks
from coursekit.notebook import execute, report
from solved import filled

ROOT = notebooks.ROOT
ASSIGNMENTS = notebooks.assignments()
MISTAKES = Path(__file__).parent / "mistakes"


def test_all_eight_assignments_exist():
    assert ASSIGNMENTS == sorted(checks.MODULES)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    """A release of every assignment made now, from a copy of solutions/."""
    root = tmp_path_factory.mktemp("release")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    assert main(["release", "--course", str(root)]) == 0
    return root


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_are_the_current_release(fresh_release, assignment):
    made = (fresh_release / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    committed = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    assert made == committed, f"exercises/{assignment} is stale: run `autograder release` and commit"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_and_no_hidden_test(assignment):
    text = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    for secret in ("BEGIN SOLUTION", "HIDDEN TESTS", "run_check", "import autograder",
                   "from autograder"):
        assert secret not in text
    assert text.count("raise NotImplementedError()") >= len(checks.load()[assignment].functions)


def test_the_bundle_holds_what_students_need_and_nothing_else(fresh_release):
    path = fresh_release / "dist" / "course-exercises.zip"
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {f"exercises/{a}/{a}.ipynb" for a in ASSIGNMENTS} <= names
        wheel = next(n for n in names if n.endswith(".whl"))
        with zipfile.ZipFile(z.open(wheel)) as w:
            inside = w.namelist()
            sources = b"".join(w.read(n) for n in inside if n.endswith(".py"))
    assert all(n.startswith(("coursekit/", "coursekit-")) for n in inside)
    assert "coursekit/data/shakespeare.txt.gz" in inside
    for secret in (b"autograder.reference", b"BEGIN SOLUTION", b"run_check"):
        assert secret not in sources


@pytest.fixture(scope="module")
def bundle_only_env(fresh_release, tmp_path_factory):
    """PYTHONPATH under which coursekit comes from the bundle's wheel and autograder is gone."""
    base = tmp_path_factory.mktemp("bundle")
    with zipfile.ZipFile(fresh_release / "dist" / "course-exercises.zip") as z:
        wheel = next(n for n in z.namelist() if n.endswith(".whl"))
        z.extract(wheel, base)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(base / "site"), str(base / wheel)], check=True)
    stub = base / "stub" / "autograder"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('autograder is not in the student bundle')\n")
    return {**os.environ, "PYTHONPATH": f"{base / 'stub'}{os.pathsep}{base / 'site'}"}


def test_visible_tests_pass_with_the_bundle_alone(bundle_only_env, tmp_path, monkeypatch):
    """Every released notebook, solved, without its experiments: all visible tests pass
    in a kernel that can import coursekit from the bundle but not autograder."""
    for key, value in bundle_only_env.items():
        monkeypatch.setenv(key, value)
    for assignment in ASSIGNMENTS:
        nb = filled(assignment)
        nb.cells = [c for c in nb.cells
                    if not str(notebooks.nbgrader_meta(c).get("grade_id", "")).startswith("experiment")]
        site = bundle_only_env["PYTHONPATH"].split(os.pathsep)[1]
        nb.cells.insert(0, nbformat.v4.new_code_cell(
            f"import coursekit\nassert coursekit.__file__.startswith({site!r}), coursekit.__file__\n"
            "try:\n    import autograder\nexcept ImportError:\n    pass\n"
            "else:\n    raise AssertionError('autograder should not be importable')"))
        execute(nb, tmp_path)
        rows = report(nb)
        assert rows and all(passed for _, _, passed, _ in rows), (assignment, rows)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, (assignment, errors[:1])


def load_mistakes(assignment):
    spec = importlib.util.spec_from_file_location(f"m_{assignment}", MISTAKES / f"{assignment}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.MISTAKES


@pytest.fixture(scope="module")
def class_results(tmp_path_factory):
    """Grade, for every assignment, its solution, its release as handed out, and (for
    rnn_bptt and lstm) one submission per mistake of the first mistake of each function."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions", root / "solutions")
    out = {}
    for assignment in ASSIGNMENTS:
        subs = root / f"submissions-{assignment}"
        for student, nb in [("solution", filled(assignment)),
                            ("released", notebooks.read(notebooks.notebook_path(assignment, notebooks.EXERCISES)))]:
            (subs / student).mkdir(parents=True)
            nbformat.write(nb, str(subs / student / "submission.ipynb"))
        expected = {}
        if assignment in ("rnn_bptt", "lstm"):
            seen = set()
            for function, description, old, new, *failing in load_mistakes(assignment):
                if function in seen:
                    continue
                seen.add(function)
                student = f"mistake-{function}"
                (subs / student).mkdir()
                nbformat.write(filled(assignment, {function: (old, new)}),
                               str(subs / student / f"{assignment}.ipynb"))
                expected[student] = {f"test_{f}" for f in (failing[0] if failing else (function,))}
        js = root / f"{assignment}.json"
        assert main(["grade", assignment, str(subs), "--course", str(root), "--json", str(js),
                     "--quiet"]) == 0
        out[assignment] = (json.loads(js.read_text()), expected)
    csv_path = root / "grades.csv"
    assert main(["export", "--course", str(root), "--to", str(csv_path)]) == 0
    return out, list(csv.DictReader(csv_path.open()))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_scores_full_marks_and_release_zero(class_results, assignment):
    grades, _ = class_results[0][assignment]
    solution, released = grades["solution"], grades["released"]
    assert solution["status"] == "graded" and solution["score"] == solution["max_score"] > 0
    assert released["score"] == 0 and released["status"] == "graded"
    assert set(solution["tests"]) == {f"test_{f}" for f in checks.load()[assignment].functions}


@pytest.mark.parametrize("assignment", ["rnn_bptt", "lstm"])
def test_each_mistake_loses_only_its_function(class_results, assignment):
    grades, expected = class_results[0][assignment]
    assert expected
    for student, failing in expected.items():
        lost = {g for g, t in grades[student]["tests"].items() if t["score"] < t["max_score"]}
        assert lost == failing, student


def test_the_export_has_a_row_per_student_and_assignment(class_results):
    _, rows = class_results
    students = {r["student"] for r in rows}
    assignments = {r["assignment"] for r in rows}
    assert assignments == set(ASSIGNMENTS)
    assert len(rows) == len(students) * len(assignments)
    solution_rows = [r for r in rows if r["student"] == "solution"]
    assert all(float(r["tests_score"]) > 0 for r in solution_rows)
