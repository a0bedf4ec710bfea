"""Hidden checks of the assignment lstm (LSTM step and sequence, forward and backward, the
parameter count, LSTMCellFunction, a torch.autograd.Function with a hand-written backward, and
the peephole step of Graves's form, forward and the backward the student derives).

Gates are fused along one 4H axis in the order i, f, g, o. A forward is graded on its outputs,
its cache left unread; a backward takes the cache of the student's own forward when that
forward is right on the case, else the reference's (``core.with_cache``), whose layout the
notebook suggests:
step (x, h_prev, c_prev, Wx, Wh, gates, tanh_c), gates (N, 4H) activated, tanh_c = tanh(c_next);
peephole step (x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c), p (3, H) rows p_i, p_f, p_o;
sequence (x, h0, c0, Wx, Wh, gates (N, T, 4H), c (N, T, H), tanh_c (N, T, H), h (N, T, H)).
When the student's own cache fails a backward that is right on the reference's, and it is a
tuple of the suggested length, the hint names the usual confusions (pre-activations for the
gates, another gate order, c_next for tanh_c, c0 None).

When a wrong result equals what a known mistake computes (a permuted gate order, a sigmoid
candidate, a missing term), the message names that mistake; inputs that a function modified
in place fail it too.
"""
from __future__ import annotations

import contextlib
import itertools

import numpy as np

from autograder import reference as ref
from coursekit.expect import Failure, expect_close, expect_equal, expect_tuple, fail
from coursekit.gradcheck import rel_error

from .core import Forward, case_label, check, devices, per_step, rng_for, sizes, with_cache

A = "lstm"
GATES = "ifgo"
STEP_CACHE = ("x", "h_prev", "c_prev", "Wx", "Wh", "gates", "tanh_c")
SEQ_CACHE = ("x", "h0", "c0", "Wx", "Wh", "gates", "c", "tanh_c", "h")
STEP_GRADS = ("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db")
SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")
CELL_GRADS = ("dx", "dh", "dc", "dWx", "dWh", "db")  # LSTMCellFunction.backward: one per input
GATE_GRAD = {  # the pre-activation gradient of each block, for hints
    "i": "da_i = dc * g * i * (1 - i)",
    "f": "da_f = dc * c_prev * f * (1 - f)",
    "g": "da_g = dc * i * (1 - g**2)",
    "o": "da_o = dh * tanh_c * o * (1 - o)",
}
ORDER_HINT = ("the prescribed order of the four blocks of the 4H axis is i, f, g, o (PyTorch's): "
              "a[:, :H] is i, a[:, H:2H] is f, a[:, 2H:3H] is g, a[:, 3H:] is o")


# ----------------------------------------------------------------------------- inputs
def step_inputs(rng, N, D, H):
    """x (N, D), h_prev (N, H), c_prev (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,)."""
    return (rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H)),
            0.5 * rng.standard_normal((D, 4 * H)), 0.5 * rng.standard_normal((H, 4 * H)),
            0.5 * rng.standard_normal(4 * H))


def seq_inputs(rng, N, T, D, H):
    """x (N, T, D), h0 (N, H), Wx (D, 4H), Wh (H, 4H), b (4H,), c0 (N, H)."""
    x, h0, c0, Wx, Wh, b = step_inputs(rng, N, D, H)
    return rng.standard_normal((N, T, D)), h0, Wx, Wh, b, c0


# ----------------------------------------------------------------------------- known mistakes
def _sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def _split(a, H, order):
    """The four (.., H) blocks of a (.., 4H) read in ``order``, as a dict gate -> block."""
    return {k: a[..., j * H:(j + 1) * H] for j, k in enumerate(order)}


def _join(blocks, order):
    return np.concatenate([blocks[k] for k in order], axis=-1)


def _step_variant(x, h, c, Wx, Wh, b, order=GATES, g_act=np.tanh, readout=np.tanh, old_cell=False):
    """lstm_step_forward as a common mistake computes it; returns (h_next, c_next, gates, a)."""
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    blk = _split(a, H, order)
    i, f, o, g = _sigmoid(blk["i"]), _sigmoid(blk["f"]), _sigmoid(blk["o"]), g_act(blk["g"])
    c_next = f * c + i * g
    h_next = o * readout(c if old_cell else c_next)
    return h_next, c_next, _join({"i": i, "f": f, "g": g, "o": o}, order), a


def _permutations():
    return ["".join(p) for p in itertools.permutations(GATES) if "".join(p) != GATES]


def _order_hint(p):
    return (f"your result matches an LSTM that reads the blocks in the order {', '.join(p)}: "
            + ORDER_HINT)


def _step_forward_mistakes(args):
    """[((h_next, c_next), hint)] of plausible wrong step forwards."""
    out = [(_step_variant(*args, order=p)[:2], _order_hint(p)) for p in _permutations()]
    out.append((_step_variant(*args, g_act=_sigmoid)[:2],
                "the candidate g (third block) goes through tanh, not a sigmoid; "
                "i, f and o are sigmoids"))
    out.append((_step_variant(*args, readout=lambda v: v)[:2],
                "h_next = o * tanh(c_next): the read-out squashes the new cell"))
    out.append((_step_variant(*args, old_cell=True)[:2],
                "h_next reads the new cell: o * tanh(c_next), not tanh(c_prev)"))
    out.append((_step_variant(*args[:5], np.zeros_like(args[5]))[:2],
                "add the bias: a = x @ Wx + h_prev @ Wh + b"))
    return out


def _gate_backward(dh, dc_in, i, f, g, o, c_prev, tanh_c, dh_in_dc=True):
    """da (.., 4H) in the order i, f, g, o and dc_prev, for one step."""
    dc = dc_in + dh * o * (1.0 - tanh_c**2) if dh_in_dc else dc_in
    da = {"i": dc * g * i * (1.0 - i), "f": dc * c_prev * f * (1.0 - f),
          "g": dc * i * (1.0 - g**2), "o": dh * tanh_c * o * (1.0 - o)}
    return da, dc * f, dc


def _step_backward_variant(dh, dc_next, cache, read=GATES, write=GATES, dh_in_dc=True,
                           raw_dc_prev=False):
    """lstm_step_backward as a common mistake computes it."""
    x, h_prev, c_prev, Wx, Wh, gates, tanh_c = cache
    H = h_prev.shape[1]
    gt = _split(gates, H, read)
    da, dc_prev, _ = _gate_backward(dh, dc_next, gt["i"], gt["f"], gt["g"], gt["o"], c_prev,
                                    tanh_c, dh_in_dc)
    if raw_dc_prev:
        dc_prev = dc_next * gt["f"]
    da = _join(da, write)
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def _step_backward_mistakes(dh, dc, cache):
    """[(grads, hint)] of plausible wrong step backwards."""
    out = [(_step_backward_variant(dh, dc, cache, raw_dc_prev=True),
            "dc_prev = dc * f with dc the total gradient of c_next (dc_next plus the h_next "
            "path), not dc_next * f"),
           (_step_backward_variant(dh, dc, cache, dh_in_dc=False),
            "dc = dc_next + dh_next * o * (1 - tanh_c**2): c_next reaches the loss through "
            "h_next too, and that term feeds the i, f and g gradients and dc_prev")]
    for p in _permutations():
        out.append((_step_backward_variant(dh, dc, cache, read=p, write=p), _order_hint(p)))
        out.append((_step_backward_variant(dh, dc, cache, write=p),
                    f"da is assembled in the order {', '.join(p)}: it must follow the forward "
                    "split, i, f, g, o"))
    return out


def _seq_forward_variant(x, h0, Wx, Wh, b, c0, order=GATES, c_start="c0", carry_h=True):
    N, T, _ = x.shape
    H = h0.shape[1]
    h_prev = h0
    c_prev = {"c0": c0, "zeros": np.zeros_like(h0), "h0": h0}[c_start]
    hs = np.empty((N, T, H))
    for t in range(T):
        h_t, c_prev, _, _ = _step_variant(x[:, t], h_prev, c_prev, Wx, Wh, b, order=order)
        hs[:, t] = h_t
        h_prev = h_t if carry_h else h0
    return hs


def _seq_forward_mistakes(args, c0_given):
    """[((h,), hint)] of plausible wrong sequence forwards."""
    out = [((_seq_forward_variant(*args, order=p),), _order_hint(p)) for p in _permutations()]
    if c0_given:
        out.append(((_seq_forward_variant(*args, c_start="zeros"),),
                    "start the cell from c0 when it is given (zeros only when c0 is None)"))
    out.append(((_seq_forward_variant(*args, c_start="h0"),),
                "c0 is the initial cell state (zeros when None), not h0"))
    out.append(((_seq_forward_variant(*args, carry_h=False),),
                "step t reads h_prev = h[:, t-1] (h0 only at the first step): carry the hidden "
                "state from step to step"))
    x, h0, Wx, Wh, b, c0 = args
    out.append(((_seq_forward_variant(x, h0, Wx, Wh, np.zeros_like(b), c0),),
                "add the bias b to the pre-activations of every step"))
    return out


def _seq_backward_variant(dh, cache, carry_c=True, carry_h=True, c0_zero=False, dh_in_dc=True,
                          c_offset=1):
    x, h0, c0, Wx, Wh, gates, c, tanh_c, h = cache
    N, T, H = h.shape
    da = np.zeros_like(gates)
    dh_carry, dc_carry = np.zeros_like(h0), np.zeros_like(h0)
    for t in range(T - 1, -1, -1):
        gt = _split(gates[:, t], H, GATES)
        c_prev = c[:, t - c_offset] if t > 0 else (np.zeros_like(c0) if c0_zero else c0)
        d, dc_prev, _ = _gate_backward(dh[:, t] + dh_carry, dc_carry, gt["i"], gt["f"], gt["g"],
                                       gt["o"], c_prev, tanh_c[:, t], dh_in_dc)
        da[:, t] = _join(d, GATES)
        dc_carry = dc_prev if carry_c else np.zeros_like(dc_prev)
        dh_carry = da[:, t] @ Wh.T if carry_h else np.zeros_like(h0)
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da2 = da.reshape(N * T, -1)
    return (da @ Wx.T, da[:, 0] @ Wh.T, x.reshape(N * T, -1).T @ da2,
            h_prev.reshape(N * T, H).T @ da2, da2.sum(axis=0))


def _seq_backward_mistakes(dh, cache):
    return [
        (_seq_backward_variant(dh, cache, carry_c=False),
         "carry the cell gradient back: step t - 1 receives dc_prev = dc * f from step t"),
        (_seq_backward_variant(dh, cache, carry_h=False),
         "each step's hidden-state gradient is dh[:, t] plus da_{t+1} @ Wh.T carried back "
         "from step t + 1"),
        (_seq_backward_variant(dh, cache, c0_zero=True),
         "at t = 0 the previous cell is c0 (the cache's third entry), which need not be zero"),
        (_seq_backward_variant(dh, cache, dh_in_dc=False),
         "dc_t = dc_carry + dh_t * o * (1 - tanh_c**2): c_t reaches the loss through h_t too"),
        (_seq_backward_variant(dh, cache, c_offset=0),
         "the previous cell of step t is c[:, t-1] (c[:, t] is the cell step t computes)"),
    ]


def _matching(got, want, mistakes, index):
    """The hint of the first known mistake whose output ``index`` equals ``got`` (and
    ``want`` does not). ``mistakes``: [(outputs, hint)], outputs a tuple like the function's."""
    if not (type(got) is np.ndarray and got.dtype == np.float64 and got.shape == np.shape(want)):
        return None
    if rel_error(got, want) <= 1e-6:
        return None
    for outputs, hint in mistakes:
        alt = outputs[index]
        if np.shape(alt) == got.shape and rel_error(got, alt) <= 1e-6:
            return hint
    return None


def _block_hint(got, want, H, default=None):
    """For a gradient with a 4H last axis: which of the blocks i, f, g, o are wrong."""
    if not (type(got) is np.ndarray and got.shape == np.shape(want) and got.shape[-1] == 4 * H):
        return default
    wrong = [k for k, w in _split(want, H, GATES).items()
             if rel_error(_split(got, H, GATES)[k], w) > 1e-6]
    if not wrong or len(wrong) == 4:
        return default
    if wrong == ["i", "f", "g"]:
        return ("the i, f and g blocks are wrong and o is right: check dc = dc_next + "
                "dh * o * (1 - tanh_c**2), which those three share")
    return (f"the {', '.join(wrong)} block(s) (of i, f, g, o along the 4H axis) are wrong: "
            + "; ".join(GATE_GRAD[k] for k in wrong))


# ----------------------------------------------------------------------------- calling
def _clip(text, limit=300):
    return text if len(text) <= limit else text[:limit] + " ..."


def _expect(name, got, want, hint=None, mistakes=(), index=0):
    expect_close(name, got, want, tol=1e-6, show=False,
                 hint=_matching(got, want, mistakes, index) or hint)


def _expect_grads(fn, names, got, want, hints, H, label, mistakes):
    """Compare each gradient of a backward, the 4H-axis ones (dWx, dWh, db) first: a wrong
    gate block there names the gate, which tells more than a wrong dx."""
    blocks = ("db", "dWx", "dWh")
    order = [names.index(b) for b in blocks] + [k for k, n in enumerate(names) if n not in blocks]
    for k in order:
        name, g, w = names[k], got[k], want[k]
        hint = _block_hint(g, w, H, hints[name]) if name in blocks else hints[name]
        _expect(f"{fn}: {name} ({label})", g, w, hint=hint, mistakes=mistakes, index=k)


def _gates_hint(got, want_gates, pre_activation):
    """What a cache entry that should hold the activated gates holds instead, if it is one of
    the two usual confusions; else None."""
    if not (type(got) is np.ndarray and got.shape == want_gates.shape and got.dtype == np.float64
            and rel_error(got, want_gates) > 1e-6):
        return None
    if rel_error(got, pre_activation) <= 1e-6:
        return ("its entry gates holds the pre-activations: the suggested cache keeps the "
                "activated gates, sigmoid for i, f, o and tanh for g, side by side in the order "
                "i, f, g, o")
    H = want_gates.shape[-1] // 4
    for p in _permutations():
        if rel_error(got, _join(_split(want_gates, H, GATES), p)) <= 1e-6:
            return (f"its entry gates holds the right gates in the order {', '.join(p)}: the "
                    "suggested cache keeps them in the order i, f, g, o")
    return None


def _step_cache_hint(cache, want, args):
    """Forward.diagnose of lstm_step_forward: see the module's docstring."""
    x, h_prev, c_prev, Wx, Wh, b = args
    hint = _gates_hint(cache[5], want[5], x @ Wx + h_prev @ Wh + b)
    tc, c_next = cache[6], ref.lstm_step_forward(*args)[1]
    if hint is None and type(tc) is np.ndarray and tc.shape == c_next.shape \
            and rel_error(tc, want[6]) > 1e-6 and rel_error(tc, c_next) <= 1e-6:
        hint = ("its entry tanh_c holds c_next: the suggested cache keeps tanh(c_next), which "
                "the backward needs for o's gradient and 1 - tanh_c**2")
    return hint


def _seq_cache_hint(cache, want, args):
    """Forward.diagnose of lstm_forward: see the module's docstring."""
    if cache[2] is None:
        return ("its entry c0 is None: when c0 is None the cache holds the zeros the cell "
                "started from")
    x, h0, Wx, Wh, b = args[:5]
    h = ref.lstm_forward(*args)[0]
    h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)
    return _gates_hint(cache[5], want[5], x @ Wx + h_prev @ Wh + b)


# ----------------------------------------------------------------------------- NumPy checks
def _step_outputs(outputs, args, label):
    h_next, c_next = outputs
    h_want, c_want, _ = ref.lstm_step_forward(*args)
    mistakes = _step_forward_mistakes(args)
    _expect(f"lstm_step_forward: c_next ({label})", c_next, c_want, mistakes=mistakes, index=1,
            hint="c_next = f * c_prev + i * g, with i, f, g the blocks 1, 2, 3 of a")
    _expect(f"lstm_step_forward: h_next ({label})", h_next, h_want, mistakes=mistakes, index=0,
            hint="h_next = o * tanh(c_next), with o = sigmoid of the fourth block of a")


def _seq_outputs(outputs, args, label):
    """lstm_forward's outputs on args = (x, h0, Wx, Wh, b) or (x, h0, Wx, Wh, b, c0)."""
    (h,) = outputs
    x, h0, Wx, Wh, b = args[:5]
    N, T, H = x.shape[0], x.shape[1], h0.shape[1]
    given = len(args) == 6
    label = label + (", c0 given" if given else ", c0 omitted")
    if type(h) is np.ndarray and h.shape == (N, T + 1, H):
        fail(Failure.SHAPE, f"lstm_forward: h ({label}) has shape {h.shape}, expected {(N, T, H)}",
             hint="h holds h_1..h_T, the states after each step, and not h0")
    c0 = args[5] if given else np.zeros_like(h0)
    mistakes = _seq_forward_mistakes((x, h0, Wx, Wh, b, c0), given)
    _expect(f"lstm_forward: h ({label})", h, ref.lstm_forward(*args)[0], mistakes=mistakes,
            index=0, hint="h[:, t] is the hidden state after step t; step 0 starts from h0 and c0")


STEP = Forward("lstm_step_forward", ("h_next", "c_next", "cache"), STEP_CACHE, _step_outputs,
               _step_cache_hint)
SEQ = Forward("lstm_forward", ("h", "cache"), SEQ_CACHE, _seq_outputs, _seq_cache_hint)


def _seq_args(x, h0, Wx, Wh, b, c0, given):
    """lstm_forward's arguments: c0 passed when ``given``, else left out (zeros)."""
    return (x, h0, Wx, Wh, b) + ((c0,) if given else ())


@check(A, "lstm_step_forward", points=2)
def _(student):
    rng = rng_for("test_lstm_step_forward")
    for d in sizes(rng, "NDH"):
        STEP.judge(student, step_inputs(rng, d["N"], d["D"], d["H"]), case_label(**d))


@check(A, "lstm_step_backward", points=3)
def _(student):
    rng = rng_for("test_lstm_step_backward")
    for d in sizes(rng, "NDH"):
        N, H = d["N"], d["H"]
        args = step_inputs(rng, N, d["D"], H)
        cache = ref.lstm_step_forward(*args)[2]
        dh_next, dc_next = rng.standard_normal((N, H)), rng.standard_normal((N, H))
        want = ref.lstm_step_backward(dh_next, dc_next, cache)
        label = case_label(**d)
        mistakes = _step_backward_mistakes(dh_next, dc_next, cache)
        hints = {"dx": "dx = da @ Wx.T, with da (N, 4H) the pre-activation gradient in the order "
                       "i, f, g, o",
                 "dh_prev": "dh_prev = da @ Wh.T",
                 "dc_prev": "dc_prev = dc * f, where dc = dc_next + dh_next * o * (1 - tanh_c**2)",
                 "dWx": "dWx = x.T @ da", "dWh": "dWh = h_prev.T @ da",
                 "db": "db = da.sum(axis=0): the bias is shared by the batch"}

        def test(call, cache):
            got = call("lstm_step_backward", dh_next, dc_next, cache, returns=STEP_GRADS)
            _expect_grads("lstm_step_backward", STEP_GRADS, got, want, hints, H, label, mistakes)
        with_cache(student, STEP, args, label, test)


@check(A, "lstm_forward", points=2, calls={"lstm_step_forward": per_step})
def _(student):
    rng = rng_for("test_lstm_forward")
    for k, d in enumerate(sizes(rng, "NTDH")):
        args = _seq_args(*seq_inputs(rng, d["N"], d["T"], d["D"], d["H"]), given=k % 2 == 1)
        SEQ.judge(student, args, case_label(**d))  # c0 omitted (zeros) and given, in turn


@check(A, "lstm_backward", points=3, calls={"lstm_step_backward": per_step})
def _(student):
    rng = rng_for("test_lstm_backward")
    for k, d in enumerate(sizes(rng, "NTDH")):
        N, T, H = d["N"], d["T"], d["H"]
        args = _seq_args(*seq_inputs(rng, N, T, d["D"], H), given=k % 2 == 0)
        cache = ref.lstm_forward(*args)[1]
        dh = rng.standard_normal((N, T, H))
        want = ref.lstm_backward(dh, cache)
        label = case_label(**d)
        mistakes = _seq_backward_mistakes(dh, cache)
        hints = {"dx": "dx[:, t] = da_t @ Wx.T, where step t gets dh[:, t] plus the gradients "
                       "carried back from step t + 1 through h and through c",
                 "dh0": "dh0 is the hidden-state gradient carried back past step 0, "
                        "da_0 @ Wh.T",
                 "dWx": "dWx sums x_t.T @ da_t over every time step",
                 "dWh": "dWh sums h_{t-1}.T @ da_t over every time step (h_{-1} is h0)",
                 "db": "db sums da_t over the batch and over every time step"}

        def test(call, cache):
            got = call("lstm_backward", dh, cache, returns=SEQ_GRADS)
            _expect_grads("lstm_backward", SEQ_GRADS, got, want, hints, H, label, mistakes)
        with_cache(student, SEQ, args, label, test)


@check(A, "lstm_param_count", points=1)
def _(student):
    rng = rng_for("test_lstm_param_count")
    cases = [(1, 1), (50, 100), (100, 50)] + [tuple(int(v) for v in rng.integers(2, 400, 2))
                                               for _ in range(4)]
    for D, H in cases:
        got = student.call("lstm_param_count", D, H)
        label = f"input_size={D}, hidden_size={H}"
        if isinstance(got, (float, np.floating)):
            fail(Failure.TYPE, f"lstm_param_count ({label}): expected an int, got {type(got).__name__}",
                 hint="a count is an integer: use * and +, or int(...), not /")
        known = {4 * (D * H + H * H): "each gate has a bias vector of H entries too",
                 4 * (D * H + H * H + 2 * H): "one bias vector per gate, as Keras counts "
                                              "(PyTorch's second bias is not counted here)",
                 D * H + H * H + H: "there are four gates (i, f, g, o), each with its own weights",
                 4 * (D * H + D * D + D): "input_size is D and hidden_size is H, in that order"}
        want = ref.lstm_param_count(D, H)
        hint = None
        if isinstance(got, (int, np.integer)) and not isinstance(got, bool) and got != want:
            hint = known.get(int(got))
        expect_equal(f"lstm_param_count ({label})", got, want, show=False,
                     hint=hint or "4 (D H + H^2 + H): per gate an (D, H) input matrix, an (H, H) "
                                  "recurrent matrix and an (H,) bias")


# ----------------------------------------------------------------------------- PyTorch check
@contextlib.contextmanager
def _full_precision():
    """Float32 matrix products in full precision (no TF32) while the check runs."""
    import torch

    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _same_tensor(got, want):
    """``got`` (fetched back from the student's side) is the tensor ``want`` unchanged."""
    import torch

    return type(got) is torch.Tensor and got.shape == want.shape and got.dtype == want.dtype \
        and torch.equal(got.detach().cpu(), want.detach().cpu())


def _expect_tensor(name, got, want, like, hint=None, mistakes=(), index=0, tol32=1e-4):
    """A tensor of ``like``'s dtype and device holding ``want`` (float64 array).

    float64: element-wise relative error 1e-6; float32: error relative to the largest entry
    of ``want``, 1e-4 (float32 rounding makes element-wise errors of tiny entries large).
    """
    import torch

    if not isinstance(got, torch.Tensor):
        fail(Failure.TYPE, f"{name}: expected a torch.Tensor, got {type(got).__name__}",
             hint="compute with torch operations on the input tensors")
    if got.dtype != like.dtype or got.device != like.device:
        fail(Failure.DTYPE, f"{name}: expected a {like.dtype} tensor on {like.device} like the "
             f"inputs, got {got.dtype} on {got.device}",
             hint="create new tensors from the inputs (torch.zeros_like, or dtype=x.dtype, "
                  "device=x.device)")
    if tuple(got.shape) != want.shape:
        fail(Failure.SHAPE, f"{name}: expected shape {want.shape}, got {tuple(got.shape)}")
    g = got.detach().to("cpu", torch.float64).numpy()
    if like.dtype == torch.float64:
        _expect(name, g, want, hint=hint, mistakes=mistakes, index=index)
        return
    if not np.all(np.isfinite(g)):
        fail(Failure.VALUES, f"{name} holds nan or inf")
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(g - want), initial=0.0)) / scale
    if not err <= tol32:
        fail(Failure.VALUES, f"{name} has the right shape {want.shape} but the wrong values", hint=hint,
             details=[f"largest error {err:.3g} relative to the largest entry (tolerance "
                      f"{tol32:g} in float32)"])


CELL_HINTS = {"dx": "dx = da @ Wx.T", "dh": "dh = da @ Wh.T",
              "dc": "the gradient of c is dc * f, with "
                    "dc = dc_next + dh_next * o * (1 - tanh_c**2)",
              "dWx": "dWx = x.T @ da", "dWh": "dWh = h.T @ da", "db": "db = da.sum(dim=0)"}


def _swapped(grads, want, k):
    """The name of the input whose gradient sits at position k of ``grads``, if another's."""
    import torch

    g = grads[k]
    if not isinstance(g, torch.Tensor) or g.dtype != torch.float64:
        return None
    g = g.detach().to("cpu", torch.float64).numpy()
    for j, w in enumerate(want):
        if j != k and w.shape == g.shape and rel_error(g, w) <= 1e-6 < rel_error(g, want[k]):
            return CELL_GRADS[j]
    return None


@check(A, "LSTMCellFunction", points=3)
def _(student):
    import torch

    rng = rng_for("test_LSTMCellFunction")
    info = student.get("LSTMCellFunction")
    if not info.get("autograd_function"):
        fail(Failure.TYPE, "LSTMCellFunction should be a class derived from "
             "torch.autograd.Function, with static methods forward and backward")
    shapes = sizes(rng, "NDH", n_random=2)
    with _full_precision():
        for device, dtype in itertools.product(devices(), (torch.float64, torch.float32)):
            npdt = np.float64 if dtype == torch.float64 else np.float32
            for k, d in enumerate(shapes):
                N, D, H = d["N"], d["D"], d["H"]
                label = f"{case_label(**d)}, {str(dtype).removeprefix('torch.')} on {device}"
                # the reference on the very numbers the tensors hold
                args = [a.astype(npdt).astype(np.float64) for a in step_inputs(rng, N, D, H)]
                h_want, c_want, cache = ref.lstm_step_forward(*args)
                inputs = [torch.tensor(a, dtype=dtype, device=device, requires_grad=True)
                          for a in args]
                # the inputs stay on the student's side, where autograd records the graph
                held = [student.put(t) for t in inputs]
                out, answer = student.call_answer("LSTMCellFunction", *held, attr="apply",
                                                  keep=True, where=f" in forward ({label})",
                                                  names=("x", "h", "c", "Wx", "Wh", "b"))
                for name, t, h in zip(("x", "h", "c", "Wx", "Wh", "b"), inputs, held):
                    if not _same_tensor(student.fetch(h), t):
                        fail(Failure.IN_PLACE, f"LSTMCellFunction: the input {name} ({label}) was "
                             "modified in place by forward",
                             hint="use out-of-place operations (c_next = f * c + i * g, not c.mul_(f))")
                h_next, c_next = expect_tuple("LSTMCellFunction.apply", out, ("h_next", "c_next"))
                mistakes = _step_forward_mistakes(args)
                _expect_tensor(f"LSTMCellFunction: c_next ({label})", c_next, c_want, inputs[0],
                               hint="c_next = f * c + i * g", mistakes=mistakes, index=1)
                _expect_tensor(f"LSTMCellFunction: h_next ({label})", h_next, h_want, inputs[0],
                               hint="h_next = o * tanh(c_next)", mistakes=mistakes, index=0)
                if h_next.grad_fn is None:
                    fail(Failure.OTHER, f"LSTMCellFunction: h_next ({label}) has no grad_fn",
                         hint="return the output tensors of forward as they are (not detached), "
                              "and call the function as LSTMCellFunction.apply")
                # upstream gradients: both outputs used, and (on one case) only one of them,
                # where autograd hands backward zeros for the unused output
                dh = rng.standard_normal((N, H)).astype(npdt).astype(np.float64)
                dc = rng.standard_normal((N, H)).astype(npdt).astype(np.float64)
                zero = np.zeros((N, H))
                upstream = [(dh, dc, "")]
                if k == len(shapes) - 1:
                    upstream += [(dh, zero, ", c_next unused"), (zero, dc, ", h_next unused")]
                for dh_v, dc_v, note in upstream:
                    want = ref.lstm_step_backward(dh_v, dc_v, cache)
                    grad_out = [torch.tensor(a, dtype=dtype, device=device) for a in (dh_v, dc_v)]
                    grads = student.call("LSTMCellFunction", *grad_out, on=answer["handle"],
                                         attr="0.grad_fn.apply", where=f" in backward ({label})",
                                         names=("dh_next", "dc_next"))
                    grads = expect_tuple("LSTMCellFunction.backward", grads, CELL_GRADS)
                    bw_mistakes = _step_backward_mistakes(dh_v, dc_v, cache)
                    for j in (5, 3, 4, 0, 1, 2):  # the 4H-axis gradients first
                        name, g, w, like = CELL_GRADS[j], grads[j], want[j], inputs[j]
                        what = (f"LSTMCellFunction.backward: {name}, the gradient of {name[1:]} "
                                f"({label}{note})")
                        other = _swapped(grads, want, j)
                        if other is not None:
                            fail(Failure.GRADIENT, f"{what} holds the gradient of {other[1:]}",
                                 hint="return one gradient per input of forward, in its order: "
                                      "(dx, dh, dc, dWx, dWh, db)")
                        hint = CELL_HINTS[name]
                        if name in ("dWx", "dWh", "db") and dtype == torch.float64 \
                                and isinstance(g, torch.Tensor):
                            g64 = g.detach().to("cpu", torch.float64).numpy()
                            hint = _block_hint(g64, w, H, hint)
                        _expect_tensor(what, g, w, like, hint=hint, mistakes=bw_mistakes, index=j)
                for name, t, h in zip(("x", "h", "c", "Wx", "Wh", "b"), inputs, held):
                    if not _same_tensor(student.fetch(h), t):
                        fail(Failure.IN_PLACE, f"LSTMCellFunction: the input {name} ({label}) was "
                             "modified in place by backward", hint="use out-of-place operations")


# ----------------------------------------------------------------------------- peephole LSTM
# Graves's peepholes: i and f read c_prev, o reads c_next, weights p (3, H) rows p_i, p_f, p_o.
PEEP_CACHE = ("x", "h_prev", "c_prev", "Wx", "Wh", "p", "gates", "c_next", "tanh_c")
PEEP_GRADS = ("dx", "dh_prev", "dc_prev", "dWx", "dWh", "db", "dp")
PEEP_HINTS = {
    "db": "db = da.sum(axis=0), da in the order i, f, g, o with da_o = dh * tanh_c * o(1 - o) "
          "and dc = dc_next + dh * o * (1 - tanh_c**2) + da_o * p_o in the i, f, g blocks",
    "dWx": "dWx = x.T @ da", "dWh": "dWh = h_prev.T @ da",
    "dp": "dp (3, H) has rows sum_n da_i * c_prev, sum_n da_f * c_prev, sum_n da_o * c_next: "
          "each peephole weight is shared by the batch, and o's reads the new cell",
    "dc_prev": "dc_prev = dc * f + da_i * p_i + da_f * p_f: c_prev also fed the i and f gates",
    "dx": "dx = da @ Wx.T", "dh_prev": "dh_prev = da @ Wh.T",
}


def peephole_inputs(rng, N, D, H, kind="random"):
    """The step's inputs and p (3, H); kind 'zero' (p = 0: the plain LSTM step) or
    'saturated' (biases of +-12 and large peepholes: gates at 0 or 1)."""
    args = step_inputs(rng, N, D, H)
    p = rng.standard_normal((3, H))
    if kind == "zero":
        p = np.zeros((3, H))
    elif kind == "saturated":
        args = args[:5] + (12.0 * np.sign(rng.standard_normal(4 * H)),)
        p = 4.0 * p
    return args + (p,)


def _peephole_cases(rng):
    """(label, dims, kind): the shape cases of sizes(), then zero and saturated peepholes."""
    out = [(case_label(**d), d, "random") for d in sizes(rng, "NDH")]
    for kind in ("zero", "saturated"):
        d = {k: int(rng.integers(2, 6)) for k in "NDH"}
        out.append((f"{case_label(**d)}, {kind} peepholes" if kind == "zero"
                    else f"{case_label(**d)}, saturated gates", d, kind))
    return out


def _peephole_variant(x, h, c, Wx, Wh, b, p, rows=(0, 1, 2), o_cell="new"):
    """lstm_peephole_step_forward as a common mistake computes it: (h_next, c_next)."""
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    pi, pf, po = (p[k] for k in rows)
    i, f = _sigmoid(a[:, :H] + c * pi), _sigmoid(a[:, H:2 * H] + c * pf)
    c_next = f * c + i * np.tanh(a[:, 2 * H:3 * H])
    peek = {"new": c_next, "old": c, "none": 0.0}[o_cell]
    o = _sigmoid(a[:, 3 * H:] + peek * po)
    return o * np.tanh(c_next), c_next


def _peephole_forward_mistakes(args):
    return [(_peephole_variant(*args, o_cell="old"),
             "the output gate peeks at the NEW cell: o = sigmoid(a_o + c_next * p_o), computed "
             "after c_next (i and f read c_prev)"),
            (_peephole_variant(*args, o_cell="none"),
             "the output gate has a peephole too: o = sigmoid(a_o + c_next * p_o)"),
            (_peephole_variant(*args, rows=(1, 0, 2)),
             "the rows of p are p_i, p_f, p_o in this order: p[0] is the input gate's"),
            (_peephole_variant(*args, rows=(2, 1, 0)),
             "the rows of p are p_i, p_f, p_o in this order: p[2] is the output gate's")]


def _peephole_backward_variant(dh, dc_next, cache, o_term=True, prev_terms=True, dp_o="c_next",
                               dp_sum=np.sum):
    x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c = cache
    H = h_prev.shape[1]
    i, f, g, o = (gates[:, k * H:(k + 1) * H] for k in range(4))
    da_o = dh * tanh_c * o * (1 - o)
    dc = dc_next + dh * o * (1 - tanh_c**2) + (da_o * p[2] if o_term else 0.0)
    da_i, da_f = dc * g * i * (1 - i), dc * c_prev * f * (1 - f)
    da = np.concatenate([da_i, da_f, dc * i * (1 - g**2), da_o], axis=1)
    dc_prev = dc * f + ((da_i * p[0] + da_f * p[1]) if prev_terms else 0.0)
    c_o = c_next if dp_o == "c_next" else c_prev
    dp = np.stack([dp_sum(da_i * c_prev, axis=0), dp_sum(da_f * c_prev, axis=0),
                   dp_sum(da_o * c_o, axis=0)])
    return da @ Wx.T, da @ Wh.T, dc_prev, x.T @ da, h_prev.T @ da, da.sum(axis=0), dp


def _peephole_backward_mistakes(dh, dc, cache):
    return [(_peephole_backward_variant(dh, dc, cache, o_term=False),
             "c_next also reaches the loss through the output gate's peephole: "
             "dc = dc_next + dh * o * (1 - tanh_c**2) + da_o * p_o"),
            (_peephole_backward_variant(dh, dc, cache, prev_terms=False),
             "c_prev fed the i and f gates through their peepholes: "
             "dc_prev = dc * f + da_i * p_i + da_f * p_f"),
            (_peephole_backward_variant(dh, dc, cache, dp_o="c_prev"),
             "the output gate's peephole read c_next: dp_o = sum_n da_o * c_next"),
            (_peephole_backward_variant(dh, dc, cache, dp_sum=np.mean),
             "each peephole weight is shared by the batch: sum over axis 0, not the mean")]


def _peephole_outputs(outputs, args, label):
    h_next, c_next = outputs
    h_want, c_want, _ = ref.lstm_peephole_step_forward(*args)
    mistakes = _peephole_forward_mistakes(args)
    _expect(f"lstm_peephole_step_forward: c_next ({label})", c_next, c_want, mistakes=mistakes,
            index=1, hint="c_next = f * c_prev + i * g with i = sigmoid(a_i + c_prev * p_i), "
                          "f = sigmoid(a_f + c_prev * p_f)")
    _expect(f"lstm_peephole_step_forward: h_next ({label})", h_next, h_want, mistakes=mistakes,
            index=0, hint="h_next = o * tanh(c_next) with o = sigmoid(a_o + c_next * p_o)")


def _peephole_cache_hint(cache, want, args):
    """Forward.diagnose of lstm_peephole_step_forward: c_next and tanh_c confused."""
    if type(cache[7]) is np.ndarray and cache[7].shape == want[7].shape \
            and rel_error(cache[7], want[7]) > 1e-6 and rel_error(cache[7], want[8]) <= 1e-6:
        return ("its entry c_next holds tanh(c_next): the backward needs c_next itself for "
                "the output gate's peephole gradient, dp_o = sum_n da_o * c_next")
    return None


PEEP = Forward("lstm_peephole_step_forward", ("h_next", "c_next", "cache"), PEEP_CACHE,
               _peephole_outputs, _peephole_cache_hint)


@check(A, "lstm_peephole_step_forward", points=1)
def _(student):
    rng = rng_for("test_lstm_peephole_step_forward")
    for label, d, kind in _peephole_cases(rng):
        PEEP.judge(student, peephole_inputs(rng, d["N"], d["D"], d["H"], kind), label)


@check(A, "lstm_peephole_step_backward", points=3)
def _(student):
    rng = rng_for("test_lstm_peephole_step_backward")
    for label, d, kind in _peephole_cases(rng):
        N, H = d["N"], d["H"]
        args = peephole_inputs(rng, N, d["D"], H, kind)
        cache = ref.lstm_peephole_step_forward(*args)[2]
        dh_next, dc_next = rng.standard_normal((N, H)), rng.standard_normal((N, H))
        want = ref.lstm_peephole_step_backward(dh_next, dc_next, cache)
        mistakes = _peephole_backward_mistakes(dh_next, dc_next, cache)

        def test(call, cache):
            got = call("lstm_peephole_step_backward", dh_next, dc_next, cache,
                       returns=PEEP_GRADS)
            for name in ("db", "dWx", "dWh", "dp", "dc_prev", "dx", "dh_prev"):
                k = PEEP_GRADS.index(name)
                _expect(f"lstm_peephole_step_backward: {name} ({label})", got[k], want[k],
                        hint=PEEP_HINTS[name], mistakes=mistakes, index=k)
        with_cache(student, PEEP, args, label, test)
