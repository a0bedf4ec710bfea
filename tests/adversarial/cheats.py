"""Adversarial submissions: what students might do to get points they did not earn, or to
break the grader, each with the verdict the grader must give it.

Every submission starts from a solved notebook (the solutions, filled into the released
notebook, experiments left empty). Most cheats then make one function wrong, the
*target*, and add the cheat: the verdict ``TARGET_ZERO`` says the cheat bought nothing
(the target scores 0) and cost the honest rest nothing. ``FULL`` is a cheat (or a harmless
oddity) on a correct notebook, which keeps its honest points; ``ZERO`` a file that cannot
be graded at all, recorded as 0 with its reason.

``SUBMISSIONS`` lists (student, assignment, build, verdict); ``build(folder, assignment)``
writes the student's folder.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from autograder.grading import notebooks
from solved import filled

TARGET = {"rnn_bptt": "rnn_step_forward", "lstm": "lstm_step_forward"}
BACKWARD = {"rnn_bptt": "rnn_step_backward", "lstm": "LSTMCellFunction"}
WRONG = {  # a plausible wrong answer: zeros of the right shapes
    "rnn_bptt": ("def rnn_step_forward(x, h_prev, Wx, Wh, b):\n"
                 "    h = np.zeros((x.shape[0], Wx.shape[1]))\n"
                 "    return h, (x, h_prev, Wx, Wh, h)\n"),
    "lstm": ("def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):\n"
             "    N, H = x.shape[0], h_prev.shape[1]\n"
             "    z = np.zeros((N, H))\n"
             "    return z, z, (x, h_prev, c_prev, Wx, Wh, np.zeros((N, 4 * H)), z)\n"),
}
# the shapes of each target's visible test: a cheat can recognise that test by them
VISIBLE_X = {"rnn_bptt": (2, 3), "lstm": (2, 3)}

FULL, TARGET_ZERO, ZERO = "full", "target zero", "zero"


# ----------------------------------------------------------------------------- building
def solved(assignment):
    """The released notebook with every answer filled in, experiments left empty."""
    nb = filled(assignment)
    for cell in nb.cells:
        if notebooks.nbgrader_meta(cell).get("grade_id", "").startswith("experiment_"):
            cell.source = ""
    return nb


def _cell(nb, grade_id):
    return next(c for c in nb.cells if notebooks.nbgrader_meta(c).get("grade_id") == grade_id)


def _index(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells)
                if notebooks.nbgrader_meta(c).get("grade_id") == grade_id)


def with_cell(nb, code, after="setup"):
    """A new student code cell right after the cell ``after`` (grade_id)."""
    nb.cells.insert(_index(nb, after) + 1, nbformat.v4.new_code_cell(code))
    return nb


def wrong(nb, assignment):
    _cell(nb, TARGET[assignment]).source = WRONG[assignment]
    return nb


def write(folder, nb, name=None, assignment=None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{assignment}.ipynb")
    nbformat.write(nb, str(path))
    return path


def cheat_cell(code, with_wrong=True, after="setup"):
    """A submission: the solved notebook, the target made wrong, and ``code`` in a cell."""
    def build(folder, a):
        nb = solved(a)
        if with_wrong:
            wrong(nb, a)
        write(folder, with_cell(nb, code.replace("TARGET", TARGET[a]), after), assignment=a)
    return build


def target_replaced(code):
    """The target's answer cell replaced by ``code`` (TARGET stands for its name)."""
    def build(folder, a):
        nb = solved(a)
        _cell(nb, TARGET[a]).source = code.replace("TARGET", TARGET[a])
        write(folder, nb, assignment=a)
    return build


def wrapped(code, function=None):
    """After the honest ``function`` (default: the target), a cell that renames it
    ``_honest`` and redefines it with ``code`` (which may call _honest)."""
    def build(folder, a):
        name = function(a) if callable(function) else TARGET[a]
        nb = solved(a)
        prelude = f"_honest = {name}\n"
        write(folder, with_cell(nb, prelude + code.replace("TARGET", name), after=name),
              assignment=a)
    return build


def tampered(change):
    """The target made wrong, then ``change(nb, assignment)`` applied to the notebook."""
    def build(folder, a):
        nb = wrong(solved(a), a)
        change(nb, a)
        write(folder, nb, assignment=a)
    return build


def honest_with(change):
    """A correct notebook, then ``change(nb, assignment)``."""
    def build(folder, a):
        nb = solved(a)
        change(nb, a)
        write(folder, nb, assignment=a)
    return build


def file_bytes(make):
    """A folder holding the file ``make(assignment) -> (name, bytes)``."""
    def build(folder, a):
        name, data = make(a)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return build


def _test_cell(nb, a):
    return _cell(nb, f"test_{TARGET[a]}")


def _meta(key, value):
    def change(nb, a):
        meta = _test_cell(nb, a).metadata["nbgrader"]
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    return change


def _tags(*tags):
    def change(nb, a):
        _test_cell(nb, a).metadata["tags"] = list(tags)
    return change


def _retype(kind):
    def change(nb, a):
        i = _index(nb, f"test_{TARGET[a]}")
        old = nb.cells[i]
        new = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_raw_cell)(
            old.source)
        new.metadata = copy.deepcopy(old.metadata)
        nb.cells[i] = new
    return change


def _delete(nb, a):
    del nb.cells[_index(nb, f"test_{TARGET[a]}")]


def _duplicate(nb, a):
    i = _index(nb, f"test_{TARGET[a]}")
    nb.cells.insert(i, copy.deepcopy(nb.cells[i]))


def _to_top(nb, a):
    i = _index(nb, f"test_{TARGET[a]}")
    nb.cells.insert(0, nb.cells.pop(i))


def _emptied(nb, a):
    _test_cell(nb, a).source = "pass  # the tests were here"


def _all_metadata_removed(nb, a):
    _test_cell(nb, a).metadata = {}


def _kernelspec(nb, a):
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}


def _symlink(folder, a):
    folder.mkdir(parents=True)
    target = folder.parent / "honest_a" / f"{a}.ipynb"
    (folder / f"{a}.ipynb").symlink_to(target)


def _empty(folder, a):
    folder.mkdir(parents=True)


def _odd_names(folder, a):
    write(folder, solved(a), name="숙제..최종 (1).ipynb")


def _shadowing(folder, a):
    write(folder, solved(a), assignment=a)
    evil = "import sys\nsys.stderr.write('shadowed\\n')\ndef allclose(*a, **k):\n    return True\n"
    (folder / "numpy.py").write_text(evil)
    (folder / "torch.py").write_text(evil)


def _nbformat3(a):
    v3 = nbformat.convert(solved(a), 3)
    return f"{a}.ipynb", nbformat.writes(v3, version=3).encode()


def _non_utf8(a):
    nb = solved(a)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("Réponses de l'étudiant"))
    return f"{a}.ipynb", nbformat.writes(nb).encode("latin-1", "replace")


def _bom(a):
    return f"{a}.ipynb", b"\xef\xbb\xbf" + nbformat.writes(solved(a)).encode()


def _truncated(a):
    data = nbformat.writes(solved(a)).encode()
    return f"{a}.ipynb", data[: len(data) // 2]


def _huge(a):
    nb = solved(a)
    nb.cells.append(nbformat.v4.new_markdown_cell("x" * (200 << 20)))
    return f"{a}.ipynb", nbformat.writes(nb).encode()


# ----------------------------------------------------------------------------- the cheats
MONKEYPATCH = {
    "patch_allclose": ("import numpy as np\nimport numpy.testing\n"
                       "np.allclose = lambda *a, **k: True\n"
                       "np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)\n"
                       "np.testing.assert_allclose = lambda *a, **k: None\n"
                       "np.array_equal = lambda *a, **k: True\n"
                       "try:\n    import torch\n    torch.allclose = lambda *a, **k: True\n"
                       "except ImportError:\n    pass\n"),
    "patch_abs": "import builtins\nbuiltins.abs = lambda x: 0.0\n",
    "patch_isinstance": ("import builtins\n_real = builtins.isinstance\n"
                         "builtins.isinstance = lambda o, t: True if t is Exception else _real(o, t)\n"),
    "patch_len": "import builtins\n_real_len = builtins.len\nbuiltins.len = lambda x: _real_len(x)\n",
    "swap_numpy_module": ("import sys, types\nfake = types.ModuleType('numpy')\n"
                          "fake.allclose = lambda *a, **k: True\n"
                          "fake.__getattr__ = lambda name: getattr(np, name)\n"
                          "sys.modules['numpy'] = fake\n"),
    "silence_showtraceback": "ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n",
    "custom_exc": ("get_ipython().set_custom_exc((BaseException,), "
                   "lambda self, etype, value, tb, tb_offset=None: None)\n"),
    "input_transformer": ("get_ipython().input_transformers_post.append(\n"
                          "    lambda lines: ['pass\\n'] if any('run_check' in l or 'serve' in l "
                          "for l in lines) else lines)\n"),
    "ast_transformer": ("import ast\nclass Strip(ast.NodeTransformer):\n"
                        "    def visit_Assert(self, node):\n        return ast.Pass()\n"
                        "get_ipython().ast_transformers.append(Strip())\n"),
    "pre_run_cell": ("def _hook(info):\n"
                     "    g = get_ipython().user_ns\n"
                     "    g['np'].allclose = lambda *a, **k: True\n"
                     "get_ipython().events.register('pre_run_cell', _hook)\n"),
}

HOSTILE = {
    "eq_always_true": ("class Liar:\n    def __eq__(self, other):\n        return True\n"
                       "    __ne__ = lambda self, other: False\n"
                       "    shape = property(lambda self: (1,))\n"
                       "def TARGET(*args):\n    return Liar(), Liar()\n"),
    "ndarray_subclass": ("class Evil(np.ndarray):\n"
                         "    def __sub__(self, other):\n        return np.zeros(np.shape(other))\n"
                         "    __rsub__ = __sub__\n"
                         "    def __abs__(self):\n        return np.zeros(self.shape)\n"
                         "    def __array_ufunc__(self, ufunc, method, *inputs, **kw):\n"
                         "        return np.zeros(np.shape(inputs[0]))\n"
                         "    def __eq__(self, other):\n        return np.ones(self.shape, bool)\n"
                         "_good = TARGET\n"
                         "def TARGET(*args):\n"
                         "    out = _good(*args)\n"
                         "    return (np.zeros_like(out[0]).view(Evil),) + tuple(out[1:])\n"),
    "float64_subclass": ("class F(np.float64):\n    def __sub__(self, other):\n        return 0.0\n"
                         "    def __abs__(self):\n        return 0.0\n"
                         "_good = TARGET\n"
                         "def TARGET(*args):\n    out = _good(*args)\n"
                         "    return (F(0.0),) + tuple(out[1:])\n"),
    "tensor_subclass": ("import torch\n"
                        "class T(torch.Tensor):\n"
                        "    @classmethod\n"
                        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
                        "        return torch.tensor(True)\n"
                        "_good = TARGET\n"
                        "def TARGET(*args):\n    out = _good(*args)\n"
                        "    return (torch.zeros(out[0].shape).as_subclass(T),) + tuple(out[1:])\n"),
    "list_not_array": ("_good = TARGET\n"
                       "def TARGET(*args):\n    out = _good(*args)\n"
                       "    return (out[0].tolist(),) + tuple(out[1:])\n"),
    "wrong_dtype": ("_good = TARGET\n"
                    "def TARGET(*args):\n    out = _good(*args)\n"
                    "    return (out[0].astype(np.float16),) + tuple(out[1:])\n"),
    "wrong_shape": ("_good = TARGET\n"
                    "def TARGET(*args):\n    out = _good(*args)\n"
                    "    return (out[0].reshape(-1),) + tuple(out[1:])\n"),
}

DELEGATE = {
    "calls_reference": ("def TARGET(*args):\n"
                        "    from autograder.reference import TARGET as ref\n"
                        "    return ref(*args)\n"),
    "reads_reference_source": ("import glob, site, sys\n"
                               "_src = ''\n"
                               "for p in sys.path + ['/work', '..', '../..']:\n"
                               "    for f in glob.glob(p + '/**/reference/*.py', recursive=True)[:50]:\n"
                               "        try:\n            _src += open(f).read()\n"
                               "        except OSError:\n            pass\n"
                               "exec(_src, globals())\n"),
}
RNN_TORCH = ("import torch\n"
             "def rnn_step_forward(x, h_prev, Wx, Wh, b):\n"
             "    cell = torch.nn.RNNCell(Wx.shape[0], Wx.shape[1], dtype=torch.float64)\n"
             "    with torch.no_grad():\n"
             "        cell.weight_ih.copy_(torch.tensor(Wx.T)); cell.weight_hh.copy_(torch.tensor(Wh.T))\n"
             "        cell.bias_ih.copy_(torch.tensor(b)); cell.bias_hh.zero_()\n"
             "        h = cell(torch.tensor(x), torch.tensor(h_prev)).numpy()\n"
             "    return h, (x, h_prev, Wx, Wh, h)\n")
LSTM_TORCH = ("import torch\n"
              "def lstm_step_forward(x, h_prev, c_prev, Wx, Wh, b):\n"
              "    _, _, cache = _honest(x, h_prev, c_prev, Wx, Wh, b)\n"
              "    cell = torch.nn.LSTMCell(Wx.shape[0], Wh.shape[0], dtype=torch.float64)\n"
              "    with torch.no_grad():\n"
              "        cell.weight_ih.copy_(torch.tensor(Wx.T)); cell.weight_hh.copy_(torch.tensor(Wh.T))\n"
              "        cell.bias_ih.copy_(torch.tensor(b)); cell.bias_hh.zero_()\n"
              "        h, c = cell(torch.tensor(x), (torch.tensor(h_prev), torch.tensor(c_prev)))\n"
              "    return h.numpy(), c.numpy(), cache\n")
RNN_AUTOGRAD = ("import torch\n"
                "def rnn_step_backward(dh_next, cache):\n"
                "    x, h_prev, Wx, Wh, h_next = cache\n"
                "    da = torch.tensor(dh_next * (1 - h_next ** 2))\n"
                "    t = [torch.tensor(a, requires_grad=True) for a in (x, h_prev, Wx, Wh)]\n"
                "    bias = torch.zeros(Wx.shape[1], dtype=torch.float64, requires_grad=True)\n"
                "    (t[0] @ t[2] + t[1] @ t[3] + bias).backward(da)\n"
                "    return tuple(v.grad.numpy() for v in t) + (bias.grad.numpy(),)\n")
LSTM_AUTOGRAD = ("class LSTMCellFunction(torch.autograd.Function):\n"
                 "    @staticmethod\n"
                 "    def forward(ctx, x, h, c, Wx, Wh, b):\n"
                 "        ctx.save_for_backward(x, h, c, Wx, Wh, b)\n"
                 "        return _honest.forward(ctx, x, h, c, Wx, Wh, b)\n"
                 "    @staticmethod\n"
                 "    def backward(ctx, dh, dc):\n"
                 "        ins = [t.detach().requires_grad_() for t in ctx.saved_tensors[:6]]\n"
                 "        with torch.enable_grad():\n"
                 "            H = ins[1].shape[1]\n"
                 "            a = ins[0] @ ins[3] + ins[1] @ ins[4] + ins[5]\n"
                 "            i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2*H])\n"
                 "            g, o = torch.tanh(a[:, 2*H:3*H]), torch.sigmoid(a[:, 3*H:])\n"
                 "            c2 = f * ins[2] + i * g\n"
                 "            h2 = o * torch.tanh(c2)\n"
                 "            return torch.autograd.grad((h2, c2), ins, (dh, dc))\n")
HARDCODED = ("def TARGET(*args):\n"
             "    out = _honest(*args)\n"
             "    if args[0].shape == VISIBLE:  # the visible test: right; any other: zeros\n"
             "        return out\n"
             "    return tuple(np.zeros_like(o) if isinstance(o, np.ndarray) else o for o in out)\n")

SECRETS = r'''
import glob, json, os, sqlite3
found, wrote = [], []
roots = [os.getcwd(), "..", "../..", "../../..", os.path.expanduser("~"), "/tmp", "/work", "/",
         "/root", "/home"]
for root in roots:
    for pattern in ("**/*.ipynb", "**/*.db", "**/checks/*.py", "**/job.json", "**/*.sqlite"):
        try:
            paths = glob.glob(os.path.join(root, pattern), recursive=True)[:200]
        except OSError:
            paths = []
        for p in paths:
            try:
                with open(p, "rb") as f:
                    head = f.read(200)
                found.append(os.path.abspath(p))
            except OSError:
                continue
            if p.endswith(".db"):
                try:
                    con = sqlite3.connect(p)
                    con.execute("update grade set auto_score = 100")
                    con.commit()
                    wrote.append(p)
                except Exception:
                    pass
import sys
graders = sorted(m for m in sys.modules if m.split(".")[0] == "autograder")
print("SECRETS " + json.dumps({"found": sorted(set(found)), "wrote": wrote, "modules": graders}))
print("".join(open(p, errors="replace").read(300) for p in found[:5]))
'''

SNIFF = ("import os\n"
         "if os.environ.get('NBGRADER_EXECUTION') or 'grade' in os.getcwd() or "
         "'AUTOGRADER' in ''.join(os.environ):\n"
         "    np.allclose = lambda *a, **k: True\n"
         "    import builtins\n    builtins.abs = lambda x: 0.0\n")

EXITS = {
    "sys_exit": "import sys\nsys.exit()\n",
    "raise_systemexit": "raise SystemExit(0)\n",
    "raise_keyboardinterrupt": "raise KeyboardInterrupt\n",
    "os_exit": "import os\nos._exit(0)\n",
    "kill_self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
}

ABUSE = {
    "endless_loop": "while True:\n    pass\n",
    "ignores_sigint": ("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                       "while True:\n    pass\n"),
    "memory_bomb": "hog = []\nwhile True:\n    hog.append(bytearray(100 << 20))\n",
    "fork_bomb": ("import os, time\nfor _ in range(10000):\n    try:\n        if os.fork() == 0:\n"
                  "            time.sleep(600)\n    except OSError:\n        break\n"),
    "thread_bomb": ("import threading, time\nfor _ in range(100000):\n    try:\n"
                    "        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
                    "    except RuntimeError:\n        break\n"),
    "print_1gb_line": "print('x' * (1 << 30))\n",
    # ~4 MB in 200,000 lines: over the grader's per-cell budget (1 MiB) whatever the load, and
    # under zmq's per-message limit (16 MiB) even when the kernel, starved of CPU, sends all
    # of it as one message (2,000,000 short lines are 15.8 MB: one such message is close to the limit)
    "million_lines": "for i in range(200_000):\n    print(f'{i:>20}')\n",
    # one message over zmq's per-message limit: refused, and the cell says so
    "one_huge_message": "print('x' * (20 << 20))\n",
    "huge_html": "from IPython.display import HTML, display\ndisplay(HTML('<b>x</b>' * (8 << 20)))\n",
    "huge_image": ("import os\nfrom IPython.display import Image, display\n"
                   "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(60 << 20), format='png'))\n"),
}


def _submissions():
    subs = []  # (student, assignments, build, verdict)
    both = ("rnn_bptt", "lstm")
    subs.append(("honest_a", both, honest_with(lambda nb, a: None), FULL))
    subs.append(("honest_wrong_target", both, tampered(lambda nb, a: None), TARGET_ZERO))
    # 1. monkeypatching
    for name, code in MONKEYPATCH.items():
        subs.append((name, both, cheat_cell(code), TARGET_ZERO))
    subs.append(("correct_and_patch_allclose", both,
                 cheat_cell(MONKEYPATCH["patch_allclose"], with_wrong=False), FULL))
    # 2. hostile return values
    for name, code in HOSTILE.items():
        subs.append((name, both, wrapped(code.replace("_good = TARGET\n", "_good = _honest\n")),
                     TARGET_ZERO))
    # 3. delegation
    subs.append(("calls_reference", both, target_replaced(DELEGATE["calls_reference"]), TARGET_ZERO))
    subs.append(("reads_reference_source", both,
                 cheat_cell(DELEGATE["reads_reference_source"], after="setup"), TARGET_ZERO))
    subs.append(("torch_rnn_layer", ("rnn_bptt",), target_replaced(RNN_TORCH), TARGET_ZERO))
    subs.append(("torch_lstm_layer", ("lstm",), wrapped(LSTM_TORCH), TARGET_ZERO))
    subs.append(("autograd_backward", ("rnn_bptt",),
                 wrapped(RNN_AUTOGRAD, function=lambda a: BACKWARD[a]), "backward zero"))
    subs.append(("autograd_backward", ("lstm",),
                 wrapped(LSTM_AUTOGRAD, function=lambda a: BACKWARD[a]), "backward zero"))
    subs.append(("hardcoded_visible", both,
                 lambda folder, a: wrapped(HARDCODED.replace("VISIBLE", repr(VISIBLE_X[a])))(folder, a),
                 TARGET_ZERO))
    # 4. secrets, 5. environment sniffing
    subs.append(("reads_secrets", both, cheat_cell(SECRETS, with_wrong=True), TARGET_ZERO))
    subs.append(("sniffs_environment", both, cheat_cell(SNIFF), TARGET_ZERO))
    # 6. exits and crashes: at the top, in a solution cell, inside a graded function
    for name, code in EXITS.items():
        subs.append((f"{name}_at_top", both, cheat_cell(code, with_wrong=False), FULL))
        subs.append((f"{name}_in_answer_cell", both,
                     lambda folder, a, code=code: honest_with(
                         lambda nb, a: setattr(_cell(nb, TARGET[a]), "source",
                                               _cell(nb, TARGET[a]).source + "\n" + code))(folder, a),
                     # the cell defines the target, then stops: whether its definition
                     # survives depends on how it stopped
                     "exit in cell"))
        indented = "".join("    " + line + "\n" for line in code.splitlines())
        subs.append((f"{name}_in_function", both,
                     target_replaced("def TARGET(*args):\n" + indented), TARGET_ZERO))
    # 7. resource abuse (a correct notebook: the abuse must cost nothing else)
    for name, code in ABUSE.items():
        subs.append((name, ("rnn_bptt",) if name not in ("fork_bomb", "endless_loop") else both,
                     cheat_cell(code, with_wrong=False), FULL))
    # 8. notebook tampering of the target's test cell (the target wrong)
    for name, change in {"test_cell_deleted": _delete, "test_cell_duplicated": _duplicate,
                         "test_cell_moved_to_top": _to_top, "test_cell_emptied": _emptied,
                         "test_cell_markdown": _retype("markdown"), "test_cell_raw": _retype("raw"),
                         "points_changed": _meta("points", 1000),
                         "grade_id_changed": _meta("grade_id", "my_own_test"),
                         "unlocked": _meta("locked", False), "checksum_changed": _meta("checksum", "0" * 32),
                         "schema_version_0": _meta("schema_version", 0),
                         "grade_flag_removed": _meta("grade", None),
                         "metadata_removed": _all_metadata_removed,
                         "tag_skip_execution": _tags("skip-execution"),
                         "tag_raises_exception": _tags("raises-exception")}.items():
        subs.append((name, ("rnn_bptt",) if name not in ("test_cell_deleted", "tag_skip_execution")
                     else both, tampered(change), TARGET_ZERO))
    subs.append(("other_kernelspec", both, honest_with(_kernelspec), FULL))
    # metadata from the future: refused as nbgrader refuses it, with the reason
    subs.append(("schema_version_99", ("rnn_bptt",), tampered(_meta("schema_version", 99)), ZERO))
    # 9. broken files
    subs.append(("invalid_json", both, file_bytes(lambda a: (f"{a}.ipynb", b"{ not json")), ZERO))
    subs.append(("truncated", both, file_bytes(_truncated), ZERO))
    subs.append(("not_utf8", ("rnn_bptt",), file_bytes(_non_utf8), ZERO))
    subs.append(("utf8_bom", ("rnn_bptt",), file_bytes(_bom), FULL))
    subs.append(("nbformat3", ("rnn_bptt",), file_bytes(_nbformat3), FULL))
    subs.append(("notebook_200mb", ("rnn_bptt",), file_bytes(_huge), ZERO))
    subs.append(("empty_folder", both, _empty, ZERO))
    subs.append(("symlink_outside", both, _symlink, ZERO))
    subs.append(("학생_odd_names", both, _odd_names, FULL))
    # 10. shadowing
    subs.append(("shadowing_numpy_torch", both, _shadowing, FULL))
    return subs


# lstm (PyTorch, slower to grade) gets every kind of cheat once, and all that touch torch
LSTM = {"honest_a", "honest_wrong_target", "patch_allclose", "custom_exc", "input_transformer",
        "swap_numpy_module", "correct_and_patch_allclose", "eq_always_true", "ndarray_subclass",
        "tensor_subclass", "wrong_dtype", "calls_reference", "torch_lstm_layer",
        "autograd_backward", "hardcoded_visible", "reads_secrets", "sniffs_environment",
        "os_exit_in_function", "kill_self_at_top", "sys_exit_in_function", "fork_bomb",
        "endless_loop", "test_cell_deleted", "tag_skip_execution", "other_kernelspec",
        "invalid_json", "empty_folder", "symlink_outside", "학생_odd_names", "shadowing_numpy_torch"}
SUBMISSIONS = [(s, tuple(a for a in assignments if a != "lstm" or s in LSTM), build, verdict)
               for s, assignments, build, verdict in _submissions()]


def build_class(root, assignment):
    """Write every submission of ``assignment`` under ``root``; returns {student: verdict}."""
    expected = {}
    for student, assignments, build, verdict in SUBMISSIONS:
        if assignment in assignments:
            build(Path(root) / student, assignment)
            expected[student] = verdict
    return expected
