"""Hidden checks of the assignment init_clip (orthogonal initialization, gradient clipping).

orthogonal: a student may draw the Gaussian matrix differently from the reference and still be
right, so the check tests properties: shape and dtype, (semi-)orthogonality scaled by the
gain, seeding (None, int, Generator), shapes of more than two axes, and the sign correction by
R's diagonal, statistically (under the Haar distribution every entry, and the determinant of a
square matrix, is positive or negative with probability exactly 1/2; an uncorrected QR makes
W[0, 0] always negative and the determinant constant). When the student's matrix equals the
reference's up to signs, the draw is the same and the exact values are required.

clip_grad_norm / clip_grad_value: compared with the reference on random dicts (0-d to 3-d
arrays, norms above and below the threshold, 1e-9 relative: the 1e-6 of the denominator
matters), plus: inputs not modified, new arrays returned, the norm before clipping as a float.
A failure names the common mistake when the student's output matches it.
"""
from __future__ import annotations

import numpy as np

from autograder import reference as ref
from coursekit.expect import Failure, expect_array, expect_close, expect_float, fail
from coursekit.gradcheck import rel_error

from .core import check, rng_for, sizes

A = "init_clip"
ORTHO_SHAPES = [(5, 5), (3, 7), (7, 3), (4, 2, 3), (3, 2, 2, 2), (1, 4), (4, 1), (1, 1)]
N_DRAWS = 400  # per shape in the sign statistics; the threshold is 6 standard deviations


# ----------------------------------------------------------------------------- helpers
def _fail(what, hint=None, details=()):
    """A wrong property of orthogonal's matrices (its values, over seeds)."""
    fail(Failure.VALUES, what, hint=hint, details=details)


# ----------------------------------------------------------------------------- orthogonal
def _flat(W, shape):
    return W.reshape(shape[0], -1)


def _expect_orthogonal(W, shape, gain, label):
    expect_array(f"orthogonal{label}", W, shape)
    if not np.all(np.isfinite(W)):
        _fail(f"orthogonal{label}: the matrix holds nan or inf")
    W2 = _flat(W, shape)
    rows, cols = W2.shape
    if rows <= cols:
        side, what, k = W2 @ W2.T, "W W^T (rows <= cols: the rows are orthonormal)", rows
    else:
        side, what, k = W2.T @ W2, "W^T W (rows > cols: the columns are orthonormal)", cols
    err = float(np.max(np.abs(side - gain**2 * np.eye(k)))) / gain**2
    if err > 1e-10:
        hint = None
        diag = np.diag(side)
        if np.allclose(diag, diag[0]) and abs(diag[0] - gain**2) > 1e-6 * gain**2:
            if np.isclose(diag[0], gain**4) or np.isclose(diag[0], gain):
                hint = "the scale is wrong: multiply the orthogonal matrix by gain (once)"
            else:
                hint = "the scale is wrong: the result must be gain times an orthogonal matrix"
        elif rows != cols:
            hint = ("for rows < cols, factorize the transpose of the Gaussian matrix (cols x "
                    "rows) and transpose Q back; the tensor is viewed as shape[0] x "
                    "prod(shape[1:])")
        else:
            hint = "take Q of the QR decomposition (np.linalg.qr), not R or the Gaussian itself"
        _fail(f"orthogonal{label}: {what} should be gain^2 I, but differs from it by "
              f"{err:.3g} (relative to gain^2)", hint=hint)


def _same_draw_or_properties(W, W_ref, label):
    """If W equals the reference up to the signs of its entries, the student drew the same
    Gaussian matrix: then the values must be the reference's (the sign correction). A single
    entry is +-gain whatever the draw, so it says nothing about the draw."""
    if W.size > 1 and rel_error(np.abs(W), np.abs(W_ref)) < 1e-8 and rel_error(W, W_ref) > 1e-8:
        expect_close(f"orthogonal{label}", W, W_ref, tol=1e-8, show=False,
                     hint="your matrix equals the expected one up to the signs of some columns "
                          "(rows when rows < cols): multiply column j of Q by sign(R[j, j]) "
                          "right after the QR decomposition, before any transpose back")


def _sign_statistics(draws, shape, label):
    """Under the Haar distribution every entry is positive or negative with probability 1/2,
    and so is det for a square matrix; mean signs over K draws are then within a few 1/sqrt(K)
    of 0. An uncorrected QR gives W[0, 0] < 0 always, and a constant determinant."""
    S = np.stack([_flat(W, shape) for W in draws])
    K = len(draws)
    limit = 6.0 / np.sqrt(K)
    mean_sign = np.sign(S).mean(axis=0)
    worst = np.unravel_index(int(np.argmax(np.abs(mean_sign))), mean_sign.shape)
    sign_fix = ("multiply column j of Q by sign(R[j, j]) after np.linalg.qr (before any "
                "transpose back): numpy's QR has its own sign convention, which biases Q")
    if abs(mean_sign[worst]) > limit:
        frac = float(np.mean(S[(slice(None), *worst)] < 0))
        where = ", ".join(str(int(i)) for i in worst)
        _fail(f"orthogonal{label}: over {K} seeds, the entry W[{where}] of the (rows, cols) "
              f"matrix is negative in a fraction {frac:.3f} of the draws, where a uniformly "
              "(Haar) distributed orthogonal matrix has it negative half of the time",
              hint=sign_fix)
    if S.shape[1] == S.shape[2]:
        det = np.linalg.det(S)
        mean_det_sign = float(np.mean(np.sign(det)))
        if abs(mean_det_sign) > limit:
            _fail(f"orthogonal{label}: over {K} seeds, the determinant is positive in a "
                  f"fraction {np.mean(det > 0):.3f} of the draws, where a uniformly (Haar) "
                  "distributed orthogonal matrix has det = +1 and -1 equally often",
                  hint=sign_fix)


@check(A, "orthogonal", points=2, forbid=("torch/nn/init.py",))
def _(student):
    rng = rng_for("test_orthogonal")
    shapes = list(ORTHO_SHAPES)
    for d in sizes(rng, "RC", n_random=3, high=7):
        shapes.append((d["R"], d["C"]))
    gains = [1.0, 2.0, 0.5]
    for i, shape in enumerate(shapes):
        gain = gains[i % len(gains)]
        seed = int(rng.integers(2**31))
        label = f" (shape={shape}, gain={gain:g}, rng=an int seed)"
        W = student.call("orthogonal", shape, gain=gain, rng=seed)
        _expect_orthogonal(W, shape, gain, label)
        _same_draw_or_properties(W, ref.orthogonal(shape, gain=gain, rng=seed), label)
    # the default gain is 1
    W = student.call("orthogonal", (4, 6), rng=int(rng.integers(2**31)))
    _expect_orthogonal(W, (4, 6), 1.0, " (shape=(4, 6), gain not given: the default is 1.0)")

    # seeding: the same int seed gives the same matrix, different seeds different ones
    seed = int(rng.integers(2**31))

    a, b, c, n1, n2 = (student.call("orthogonal", shape, rng=r) for shape, r in
                       [((5, 4), seed), ((5, 4), seed), ((5, 4), seed + 1), ((4, 5), None),
                        ((4, 5), None)])
    for W in (a, b, c):
        _expect_orthogonal(W, (5, 4), 1.0, " (shape=(5, 4), rng=an int seed)")
    if not np.array_equal(a, b):
        _fail("orthogonal: two calls with the same int seed returned different matrices",
              hint="build the generator from the argument: rng = np.random.default_rng(rng) "
                   "(it accepts None, an int or a Generator), and draw only from it")
    if np.allclose(a, c):
        _fail("orthogonal: two different int seeds returned the same matrix",
              hint="draw from np.random.default_rng(rng), not from a generator of your own")
    for W in (n1, n2):
        _expect_orthogonal(W, (4, 5), 1.0, " (shape=(4, 5), rng=None)")
    if np.allclose(n1, n2):
        _fail("orthogonal: two calls with rng=None returned the same matrix",
              hint="rng=None means a fresh, unseeded generator: np.random.default_rng(None)")

    # a Generator: used as given (it advances), so equal generators give equal matrices
    gen_seed = int(rng.integers(2**31))

    # the Generators stay on the student's side, so that g1 is the same object both times
    g1, g2 = (student.put(np.random.default_rng(gen_seed)) for _ in range(2))
    first, twin, second = (student.call("orthogonal", (3, 6), gain=1.5, rng=g) for g in (g1, g2, g1))
    for W in (first, twin, second):
        _expect_orthogonal(W, (3, 6), 1.5, " (shape=(3, 6), gain=1.5, rng=a Generator)")
    if not np.array_equal(first, twin):
        _fail("orthogonal: two Generators with the same seed gave different matrices",
              hint="draw the Gaussian from the Generator you are given (np.random.default_rng "
                   "returns it unchanged)")
    if np.allclose(first, second):
        _fail("orthogonal: two calls with the same Generator gave the same matrix",
              hint="use the Generator you are given, not a new one seeded from it or a copy")

    # the sign correction, statistically, on shapes where the draw may differ from ours
    for shape in [(3, 3), (2, 5), (1, 1)]:
        seeds = [int(s) for s in rng.integers(2**31, size=N_DRAWS)]
        draws = [student.call("orthogonal", shape, rng=s) for s in seeds]
        label = f" (shape={shape}, rng=int seeds)"
        for W in draws[:3]:
            _expect_orthogonal(W, shape, 1.0, label)
        _sign_statistics(draws, shape, label)


# ----------------------------------------------------------------------------- clipping
GRAD_SHAPES = [(), (1,), (4,), (3, 2), (2, 3, 2), (5, 1), (1, 1, 3)]
KEYS = ["W", "b", "U", "h0", "s", "V", "c"]


def _random_grads(rng, n_keys, scale=1.0):
    keys = list(rng.choice(KEYS, size=n_keys, replace=False))
    out = {}
    for k in keys:
        shape = GRAD_SHAPES[int(rng.integers(len(GRAD_SHAPES)))]
        out[str(k)] = np.asarray(scale * rng.standard_normal(shape), dtype=np.float64)
    return out


def _arrays(n):
    return f"{n} array" + ("s" if n > 1 else "")


def _norm(grads):
    return float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))


def _norm_cases(rng):
    """(grads, max_norm, description) with the global norm above and below the threshold."""
    cases = []
    factors = [0.05, 0.3, 0.9, 1.5, 10.0]
    for i, n_keys in enumerate([1, 2, 3, 4, 5, 3, 2]):
        grads = _random_grads(rng, n_keys, scale=float(rng.uniform(0.3, 3.0)))
        f = factors[i % len(factors)]
        total = _norm(grads)
        cases.append((grads, f * total,
                      f"{_arrays(n_keys)}, max_norm = {f:g} x the global norm of the input"))
    # only 0-d arrays; a tiny norm (the 1e-6 matters most); a large one; all zeros
    cases.append(({"a": np.array(3.0), "b": np.array(-4.0)}, 2.0, "two 0-d arrays, norm above"))
    tiny = _random_grads(rng, 3, scale=1e-3)
    cases.append((tiny, 0.2 * _norm(tiny), "3 arrays, a norm of order 1e-3, above max_norm"))
    big = _random_grads(rng, 3, scale=1e3)
    cases.append((big, 1.0, "3 arrays, a norm of order 1e3, max_norm = 1"))
    zeros = {"W": np.zeros((3, 2)), "b": np.zeros(2)}
    cases.append((zeros, 1.0, "all gradients zero"))
    return cases


def _as_entry(got):
    """A 0-d result may come back as a numpy float64 scalar (numpy's arithmetic on 0-d
    arrays returns one): accept it as the 0-d array it stands for."""
    if isinstance(got, np.float64) and not isinstance(got, np.ndarray):
        return np.asarray(got)
    return got


def _expect_dict(name, out, grads, label):
    if not isinstance(out, dict):
        _fail(f"{name}: expected a dict name -> array ({label}), got {type(out).__name__}",
              hint="return a new dict with the same keys, e.g. {k: ... for k, g in grads.items()}")
    if set(out) != set(grads):
        missing, extra = sorted(set(grads) - set(out)), sorted(set(out) - set(grads))
        _fail(f"{name}: the returned dict should have the keys of grads ({label})",
              details=[f"missing: {missing}", f"unexpected: {extra}"],
              hint="one entry per gradient, under the same name")
    return {k: _as_entry(out[k]) for k in grads}


def _matches(got, variant):
    try:
        return all(rel_error(got[k], variant[k]) < 1e-9 for k in variant)
    except (ValueError, TypeError):
        return False


def _scale(grads, coef):
    return {k: g * coef for k, g in grads.items()}


def _norm_mistake(got, grads, max_norm):
    """A hint naming the mistake the student's clipped gradients match, if any."""
    total = _norm(grads)
    s = total ** 2
    variants = [
        ({k: g * (max_norm / s) for k, g in grads.items()} if s > max_norm else grads,
         "this is the slide's bug of chapter 4: the squared norm sum(g**2) is compared with "
         "max_norm and divided by; use its square root, the norm"),
        (_scale(grads, max_norm / (s + 1e-6)) if s > max_norm else grads,
         "the squared norm sum(g**2) is used where the norm is needed (the slide's bug of "
         "chapter 4): take the square root of the sum of squares"),
        (_scale(grads, max_norm / total) if total > max_norm else grads,
         "add 1e-6 to the norm in the denominator: coef = max_norm / (total_norm + 1e-6), as "
         "torch does"),
        ({k: g * min(1.0, max_norm / (np.sqrt(np.sum(g * g)) + 1e-6)) for k, g in grads.items()},
         "each array is clipped with its own norm; clipping by the global norm uses one norm "
         "over all the arrays together, and one factor for all of them"),
        ({k: g * max_norm / (total + 1e-6) for k, g in grads.items()},
         "the gradients are rescaled even when the norm is below max_norm: the factor is "
         "min(1, max_norm / (total_norm + 1e-6))"),
        ({k: np.clip(g, -max_norm, max_norm) for k, g in grads.items()},
         "this is clipping by value; clip_grad_norm rescales all arrays by one factor"),
    ]
    for variant, hint in variants:
        if _matches(got, variant):
            return hint
    return None


@check(A, "clip_grad_norm", points=2, forbid=("torch/nn/utils/clip_grad.py",))
def _(student):
    rng = rng_for("test_clip_grad_norm")
    for grads, max_norm, label in _norm_cases(rng):
        want, want_total = ref.clip_grad_norm(grads, max_norm)
        out, total = student.call("clip_grad_norm", grads, max_norm,
                                  returns=("clipped", "total_norm"))
        out = _expect_dict("clip_grad_norm", out, grads, label)
        for k in grads:
            expect_array(f"clip_grad_norm: clipped[{k!r}] ({label})", out[k], grads[k].shape)
        if not _matches(out, want):
            hint = _norm_mistake(out, grads, max_norm)
            for k in grads:
                expect_close(f"clip_grad_norm: clipped[{k!r}] ({label})", out[k], want[k],
                             tol=1e-9, show=False, hint=hint)
        t = total[()] if isinstance(total, np.ndarray) and total.ndim == 0 else total
        number = isinstance(t, (float, int, np.floating, np.integer)) and not isinstance(t, bool)
        t = float(t) if number else None
        hint = "total_norm is the square root of the sum of g**2 over every entry of every array"
        if t is not None and want_total > max_norm and abs(t - max_norm) <= 1e-5 * max_norm:
            hint = ("return the norm before clipping (the global norm of the input), as "
                    "torch.nn.utils.clip_grad_norm_ does")
        elif t is not None and want_total > 0 and abs(t - want_total**2) <= 1e-9 * want_total**2:
            hint = "this is the squared norm: take its square root"
        expect_float(f"clip_grad_norm: total_norm ({label})", total, want_total, tol=1e-9,
                     show=False, hint=hint)

    # new arrays, never the inputs or views of them (Student.call checks the inputs untouched)
    grads = _random_grads(rng, 4, scale=2.0)
    below = {k: np.asarray(rng.standard_normal(g.shape) * 1e-3) for k, g in grads.items()}
    for g, max_norm, label in [(grads, 0.1 * _norm(grads), "norm above max_norm"),
                               (below, 10.0, "norm below max_norm")]:
        (out, _), answer = student.call_answer("clip_grad_norm", g, max_norm,
                                               returns=("clipped", "total_norm"))
        _expect_new_arrays("clip_grad_norm", out, g, answer, label, "[0]")


def _expect_new_arrays(name, out, grads, answer, label, prefix=""):
    """The clipped dict and its arrays are new objects: ``answer['aliases']`` lists the
    outputs (paths under ``prefix``, the position of the dict in the returned value) that
    are an input or share its memory."""
    aliases = [(str(o), str(i)) for o, i in answer.get("aliases", [])
               if isinstance(o, str) and o.startswith(prefix)]
    if any(o == prefix and i == "grads" for o, i in aliases):
        _fail(f"{name} returned its input dict ({label})",
              hint="build and return a new dict of new arrays")
    out = _expect_dict(name, out, grads, label)
    for o, i in aliases:
        k = o[len(prefix):]
        if k and i == "grads" + k:
            _fail(f"{name}: clipped{k} is the input array grads{k} itself (or a view "
                  f"of it) ({label})",
                  hint="always return new arrays, even when nothing is clipped (g.copy() or "
                       "g * 1.0): the caller may modify them, or the inputs, afterwards")


def _value_mistake(got, grads, c):
    variants = [
        ({k: np.minimum(g, c) for k, g in grads.items()},
         "only the upper side is clipped: values below -clip_value must become -clip_value"),
        ({k: np.maximum(g, -c) for k, g in grads.items()},
         "only the lower side is clipped: values above clip_value must become clip_value"),
        ({k: np.clip(g, 0.0, c) for k, g in grads.items()},
         "the interval is [-clip_value, clip_value], not [0, clip_value]"),
        ({k: np.clip(np.abs(g), -c, c) for k, g in grads.items()},
         "the signs are lost: clip g itself, not its absolute value"),
        ({k: np.where(np.abs(g) > c, c, g) for k, g in grads.items()},
         "a large negative value must become -clip_value, not +clip_value"),
        (ref.clip_grad_norm(grads, c)[0],
         "this is clipping by norm; clip_grad_value clips every element to "
         "[-clip_value, clip_value] on its own"),
    ]
    for variant, hint in variants:
        if _matches(got, variant):
            return hint
    return "every element becomes max(-clip_value, min(clip_value, g)): np.clip"


@check(A, "clip_grad_value", points=1, forbid=("torch/nn/utils/clip_grad.py",))
def _(student):
    rng = rng_for("test_clip_grad_value")
    cases = []
    for i, n_keys in enumerate([1, 2, 3, 4, 5]):
        grads = _random_grads(rng, n_keys, scale=float(rng.uniform(0.5, 3.0)))
        # a threshold inside the spread of the values, so that both sides get clipped
        flat = np.abs(np.concatenate([g.ravel() for g in grads.values()]))
        c = float(np.quantile(flat, [0.3, 0.5, 0.7][i % 3])) if flat.size > 1 else 0.5 * float(flat[0])
        cases.append((grads, max(c, 1e-3), _arrays(n_keys)))
    cases.append(({"a": np.array(3.0), "b": np.array(-4.0), "c": np.array(0.2)}, 1.0,
                  "three 0-d arrays"))
    cases.append(({"W": rng.standard_normal((3, 2)) * 0.01}, 5.0,
                  "nothing to clip: every element is below clip_value"))
    for grads, c, label in cases:
        want = ref.clip_grad_value(grads, c)
        out = student.call("clip_grad_value", grads, c)
        out = _expect_dict("clip_grad_value", out, grads, label)
        for k in grads:
            expect_array(f"clip_grad_value: clipped[{k!r}] ({label})", out[k], grads[k].shape)
        if not _matches(out, want):
            hint = _value_mistake(out, grads, c)
            for k in grads:
                expect_close(f"clip_grad_value: clipped[{k!r}] ({label})", out[k], want[k],
                             tol=1e-12, show=False, hint=hint)

    grads = _random_grads(rng, 4, scale=3.0)
    small = {k: np.asarray(1e-3 * rng.standard_normal(g.shape)) for k, g in grads.items()}
    for g, c, label in [(grads, 0.5, "values above clip_value"),
                        (small, 10.0, "nothing to clip")]:
        out, answer = student.call_answer("clip_grad_value", g, c)
        _expect_new_arrays("clip_grad_value", out, g, answer, label)
