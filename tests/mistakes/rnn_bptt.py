"""Plausible student mistakes in the answer cells of rnn_bptt, as text replacements.

Each entry is (function, description, old_text, new_text), or the same with a fifth item,
the functions whose checks it fails; old_text occurs in the answer cell of ``function`` (its
solution code, marker lines removed). Every mistake must fail the hidden check of its function
(or of those listed) and no other (tests/test_assignment_checks.py). A cache that holds the
wrong arrays, the outputs being right, costs the functions that read the cache: a forward is
graded on its outputs, and a backward takes the cache of the student's own forward when that
forward's outputs are right.
"""

MISTAKES = [
    # ------------------------------------------------------------------ rnn_step_forward
    ("rnn_step_forward", "sigmoid instead of tanh",
     "h_next = np.tanh(x @ Wx + h_prev @ Wh + b)",
     "h_next = 1 / (1 + np.exp(-(x @ Wx + h_prev @ Wh + b)))"),
    ("rnn_step_forward", "Wh transposed (column convention)",
     "h_prev @ Wh + b", "h_prev @ Wh.T + b"),
    ("rnn_step_forward", "bias added after the tanh",
     "h_next = np.tanh(x @ Wx + h_prev @ Wh + b)",
     "h_next = np.tanh(x @ Wx + h_prev @ Wh) + b"),
    ("rnn_step_forward", "bias forgotten",
     "h_prev @ Wh + b)", "h_prev @ Wh)"),
    ("rnn_step_forward", "cache in another order",
     "cache = (x, h_prev, Wx, Wh, h_next)", "cache = (x, Wx, h_prev, Wh, h_next)",
     ("rnn_step_backward",)),
    ("rnn_step_forward", "cache keeps the pre-activation instead of h_next",
     "cache = (x, h_prev, Wx, Wh, h_next)",
     "cache = (x, h_prev, Wx, Wh, x @ Wx + h_prev @ Wh + b)",
     ("rnn_step_backward",)),

    # ------------------------------------------------------------------ rnn_step_backward
    ("rnn_step_backward", "tanh' taken as 1 - h instead of 1 - h^2",
     "da = dh_next * (1 - h_next**2)", "da = dh_next * (1 - h_next)"),
    ("rnn_step_backward", "tanh' computed from h_prev",
     "da = dh_next * (1 - h_next**2)", "da = dh_next * (1 - h_prev**2)"),
    ("rnn_step_backward", "dh_prev without the transpose of Wh",
     "dh_prev = da @ Wh.T", "dh_prev = da @ Wh"),
    ("rnn_step_backward", "dWh transposed",
     "dWh = h_prev.T @ da", "dWh = da.T @ h_prev"),
    ("rnn_step_backward", "db summed over the wrong axis",
     "db = da.sum(axis=0)", "db = da.sum(axis=1)"),
    ("rnn_step_backward", "db averaged over the batch",
     "db = da.sum(axis=0)", "db = da.mean(axis=0)"),
    ("rnn_step_backward", "dx skips the tanh derivative",
     "dx = da @ Wx.T", "dx = dh_next @ Wx.T"),
    ("rnn_step_backward", "dh_next multiplied in place",
     "da = dh_next * (1 - h_next**2)",
     "dh_next *= 1 - h_next**2\n    da = dh_next"),

    # ------------------------------------------------------------------ rnn_forward
    ("rnn_forward", "every step starts from h0 (state not carried)",
     "h_prev = np.tanh(x[:, t] @ Wx + h_prev @ Wh + b)",
     "h_prev = np.tanh(x[:, t] @ Wx + h0 @ Wh + b)"),
    ("rnn_forward", "starts from zeros instead of h0",
     "h_prev = h0\n", "h_prev = np.zeros_like(h0)\n"),
    ("rnn_forward", "stores the state before the step (off by one)",
     "        h_prev = np.tanh(x[:, t] @ Wx + h_prev @ Wh + b)  # one step, as rnn_step_forward\n"
     "        h[:, t] = h_prev\n",
     "        h[:, t] = h_prev\n"
     "        h_prev = np.tanh(x[:, t] @ Wx + h_prev @ Wh + b)\n"),
    ("rnn_forward", "time-major indexing x[t]",
     "np.tanh(x[:, t] @ Wx", "np.tanh(x[t] @ Wx"),
    ("rnn_forward", "Wh transposed",
     "h_prev @ Wh + b)", "h_prev @ Wh.T + b)"),
    ("rnn_forward", "cache in another order",
     "cache = (x, h0, Wx, Wh, h)", "cache = (x, h, Wx, Wh, h0)",
     ("rnn_backward", "bptt_grad_norms")),
    ("rnn_forward", "cache without h0",
     "cache = (x, h0, Wx, Wh, h)", "cache = (x, Wx, Wh, h)",
     ("rnn_backward", "bptt_grad_norms")),

    # ------------------------------------------------------------------ rnn_backward
    ("rnn_backward", "the gradient from step t+1 is not added",
     "da = (dh[:, t] + dh_carry) * (1 - h[:, t] ** 2)",
     "da = dh[:, t] * (1 - h[:, t] ** 2)"),
    ("rnn_backward", "tanh' of the previous state",
     "da = (dh[:, t] + dh_carry) * (1 - h[:, t] ** 2)",
     "da = (dh[:, t] + dh_carry) * (1 - h_prev ** 2)"),
    ("rnn_backward", "dWh overwritten instead of accumulated",
     "dWh += h_prev.T @ da", "dWh = h_prev.T @ da"),
    ("rnn_backward", "dWx overwritten instead of accumulated",
     "dWx += x[:, t].T @ da", "dWx = x[:, t].T @ da"),
    ("rnn_backward", "h[:, t-1] also at t = 0 (wraps to the last state instead of h0)",
     "h_prev = h[:, t - 1] if t > 0 else h0", "h_prev = h[:, t - 1]"),
    ("rnn_backward", "the step's own state used as its input state",
     "h_prev = h[:, t - 1] if t > 0 else h0", "h_prev = h[:, t]"),
    ("rnn_backward", "loop forward in time",
     "for t in reversed(range(T)):", "for t in range(T):"),
    ("rnn_backward", "dh0 returned as zeros",
     "dh0 = dh_carry", "dh0 = np.zeros_like(h0)"),
    ("rnn_backward", "the carried gradient added into dh in place",
     "da = (dh[:, t] + dh_carry) * (1 - h[:, t] ** 2)",
     "dh[:, t] += dh_carry\n        da = dh[:, t] * (1 - h[:, t] ** 2)"),

    # ------------------------------------------------------------------ bptt_grad_norms
    ("bptt_grad_norms", "tanh' factor forgotten",
     "g = (g * (1 - h[:, t] ** 2)) @ Wh.T", "g = g @ Wh.T"),
    ("bptt_grad_norms", "Wh instead of Wh.T",
     "g = (g * (1 - h[:, t] ** 2)) @ Wh.T", "g = (g * (1 - h[:, t] ** 2)) @ Wh"),
    ("bptt_grad_norms", "steps back before recording the norm (off by one)",
     "        norms[t] = np.linalg.norm(g)\n        g = (g * (1 - h[:, t] ** 2)) @ Wh.T",
     "        g = (g * (1 - h[:, t] ** 2)) @ Wh.T\n        norms[t] = np.linalg.norm(g)"),
    ("bptt_grad_norms", "tanh' of the previous state (off by one)",
     "g = (g * (1 - h[:, t] ** 2)) @ Wh.T", "g = (g * (1 - h[:, t - 1] ** 2)) @ Wh.T"),
    ("bptt_grad_norms", "mean of per-example norms instead of one norm for the batch",
     "norms[t] = np.linalg.norm(g)", "norms[t] = np.linalg.norm(g, axis=1).mean()"),
    ("bptt_grad_norms", "dh_T multiplied in place at the first step",
     "g = (g * (1 - h[:, t] ** 2)) @ Wh.T",
     "g *= 1 - h[:, t] ** 2\n        g = g @ Wh.T"),
]
