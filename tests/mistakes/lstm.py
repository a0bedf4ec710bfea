"""Plausible student mistakes in the answer cells of solutions/lstm/lstm.ipynb.

Each entry is (function, description, old_text, new_text), or the same with a fifth item,
the functions whose checks it fails: old_text is replaced by new_text in that function's
answer cell (solution markers removed); the hidden check of that function (or of those listed)
must fail and no other. A cache that holds the wrong arrays, the outputs being right, costs
the backward that reads it: a forward is graded on its outputs, and a backward takes the
cache of the student's own forward when that forward's outputs are right.
"""

_CELL_BACKWARD = """        ctx.save_for_backward(x, h, c, Wx, Wh, i, f, g, o, tanh_c)
        return h_next, c_next

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dh_next, dc_next):
        x, h, c, Wx, Wh, i, f, g, o, tanh_c = ctx.saved_tensors
        dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
        da = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f),
                        dc * i * (1 - g ** 2), dh_next * tanh_c * o * (1 - o)], dim=1)
        dx = da @ Wx.T
        dh = da @ Wh.T
        dc_prev = dc * f
        dWx = x.T @ da
        dWh = h.T @ da
        db = da.sum(dim=0)
        return dx, dh, dc_prev, dWx, dWh, db"""

_RECOMPUTE = """        ctx.save_for_backward(x, h, c, Wx, Wh, b)
        return h_next, c_next

    @staticmethod
    def backward(ctx, dh_next, dc_next):
        inputs = [t.detach().requires_grad_() for t in ctx.saved_tensors]
        with torch.enable_grad():
            x, h, c, Wx, Wh, b = inputs
            H = h.shape[1]
            a = x @ Wx + h @ Wh + b
            c_next = torch.sigmoid(a[:, H:2 * H]) * c + torch.sigmoid(a[:, :H]) * torch.tanh(a[:, 2 * H:3 * H])
            h_next = torch.sigmoid(a[:, 3 * H:]) * torch.tanh(c_next)
"""

MISTAKES = [
    # ------------------------------------------------------------------ lstm_step_forward
    ("lstm_step_forward", "i and f blocks swapped (f first)",
     "i = 0.5 * (1 + np.tanh(0.5 * a[:, :H]))  # sigmoid, written so that it never overflows\n"
     "    f = 0.5 * (1 + np.tanh(0.5 * a[:, H:2 * H]))",
     "f = 0.5 * (1 + np.tanh(0.5 * a[:, :H]))\n"
     "    i = 0.5 * (1 + np.tanh(0.5 * a[:, H:2 * H]))"),
    ("lstm_step_forward", "cs231n's order i, f, o, g",
     "g = np.tanh(a[:, 2 * H:3 * H])\n    o = 0.5 * (1 + np.tanh(0.5 * a[:, 3 * H:]))",
     "g = np.tanh(a[:, 3 * H:])\n    o = 0.5 * (1 + np.tanh(0.5 * a[:, 2 * H:3 * H]))"),
    ("lstm_step_forward", "sigmoid for the candidate g",
     "g = np.tanh(a[:, 2 * H:3 * H])", "g = 0.5 * (1 + np.tanh(0.5 * a[:, 2 * H:3 * H]))"),
    ("lstm_step_forward", "no tanh in the read-out", "h_next = o * tanh_c", "h_next = o * c_next"),
    ("lstm_step_forward", "read-out of the old cell", "h_next = o * tanh_c", "h_next = o * np.tanh(c_prev)"),
    ("lstm_step_forward", "pre-activations in the cache",
     "cache = (x, h_prev, c_prev, Wx, Wh, gates, tanh_c)", "cache = (x, h_prev, c_prev, Wx, Wh, a, tanh_c)",
     ("lstm_step_backward",)),
    ("lstm_step_forward", "c_next instead of tanh(c_next) in the cache",
     "cache = (x, h_prev, c_prev, Wx, Wh, gates, tanh_c)", "cache = (x, h_prev, c_prev, Wx, Wh, gates, c_next)",
     ("lstm_step_backward",)),
    ("lstm_step_forward", "gates cached in the order i, f, o, g",
     "gates = np.concatenate([i, f, g, o], axis=1)", "gates = np.concatenate([i, f, o, g], axis=1)",
     ("lstm_step_backward",)),
    ("lstm_step_forward", "c_prev modified in place",
     "c_next = f * c_prev + i * g", "c_prev *= f\n    c_next = c_prev + i * g"),
    # ------------------------------------------------------------------ lstm_step_backward
    ("lstm_step_backward", "dc without the path through h_next",
     "dc = dc_next + dh_next * o * (1 - tanh_c ** 2)", "dc = dc_next"),
    ("lstm_step_backward", "dc_prev from dc_next alone", "dc_prev = dc * f", "dc_prev = dc_next * f"),
    ("lstm_step_backward", "da assembled in the order i, f, o, g",
     "da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)],",
     "da = np.concatenate([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)],"),
    ("lstm_step_backward", "mean instead of sum for db", "db = da.sum(axis=0)", "db = da.mean(axis=0)"),
    ("lstm_step_backward", "tanh derivative without the square", "(1 - tanh_c ** 2)", "(1 - tanh_c)"),
    ("lstm_step_backward", "candidate derivative 1 - g", "dg * (1 - g ** 2)", "dg * (1 - g)"),
    ("lstm_step_backward", "dWh from x", "dWh = h_prev.T @ da", "dWh = x.T @ da"),
    ("lstm_step_backward", "dc_next modified in place",
     "dc = dc_next + dh_next * o * (1 - tanh_c ** 2)",
     "dc = dc_next\n    dc += dh_next * o * (1 - tanh_c ** 2)"),
    # ------------------------------------------------------------------ lstm_forward
    ("lstm_forward", "c0 ignored (always zeros)",
     "if c0 is None:\n        c0 = np.zeros((N, H))", "c0 = np.zeros((N, H))"),
    ("lstm_forward", "i and f blocks swapped",
     "i = 0.5 * (1 + np.tanh(0.5 * a[:, :H]))\n        f = 0.5 * (1 + np.tanh(0.5 * a[:, H:2 * H]))",
     "f = 0.5 * (1 + np.tanh(0.5 * a[:, :H]))\n        i = 0.5 * (1 + np.tanh(0.5 * a[:, H:2 * H]))"),
    ("lstm_forward", "the hidden state is not carried",
     "h_prev, c_prev = h[:, t], c[:, t]", "c_prev = c[:, t]"),
    ("lstm_forward", "pre-activations in the cache",
     "gates[:, t] = np.concatenate([i, f, g, o], axis=1)", "gates[:, t] = a",
     ("lstm_backward",)),
    ("lstm_forward", "bias forgotten", "gates = x @ Wx + b", "gates = x @ Wx"),
    ("lstm_forward", "h0 used as the initial cell",
     "if c0 is None:\n        c0 = np.zeros((N, H))", "if c0 is None:\n        c0 = h0"),
    # ------------------------------------------------------------------ lstm_backward
    ("lstm_backward", "the cell gradient is not carried back",
     "dc_carry = dc_t * f", "dc_carry = np.zeros((N, H))"),
    ("lstm_backward", "the hidden gradient from step t+1 is not added",
     "dh_t = dh[:, t] + dh_carry", "dh_t = dh[:, t]"),
    ("lstm_backward", "zeros instead of c0 at the first step",
     "c_prev = c[:, t - 1] if t > 0 else c0", "c_prev = c[:, t - 1] if t > 0 else np.zeros((N, H))"),
    ("lstm_backward", "off by one: c[:, t] as the previous cell",
     "c_prev = c[:, t - 1] if t > 0 else c0", "c_prev = c[:, t] if t > 0 else c0"),
    ("lstm_backward", "dWh from h_t instead of h_{t-1}",
     "h_prev = np.concatenate([h0[:, None], h[:, :-1]], axis=1)", "h_prev = h"),
    ("lstm_backward", "dh modified in place",
     "dh_t = dh[:, t] + dh_carry", "dh_t = dh[:, t]\n        dh_t += dh_carry"),
    ("lstm_backward", "db from the last step only",
     "db = da.sum(axis=(0, 1))", "db = da[:, -1].sum(axis=0)"),
    ("lstm_backward", "dh0 is the upstream gradient of step 0", "dh0 = dh_carry", "dh0 = dh[:, 0]"),
    # ------------------------------------------------------------------ lstm_param_count
    ("lstm_param_count", "bias forgotten", "4 * (D * H + H * H + H)", "4 * (D * H + H * H)"),
    ("lstm_param_count", "two bias vectors (PyTorch's count)", "4 * (D * H + H * H + H)",
     "4 * (D * H + H * H + 2 * H)"),
    ("lstm_param_count", "one gate instead of four", "4 * (D * H + H * H + H)", "D * H + H * H + H"),
    ("lstm_param_count", "a float", "4 * (D * H + H * H + H)", "4.0 * (D * H + H * H + H)"),
    ("lstm_param_count", "arguments swapped", "D, H = input_size, hidden_size", "H, D = input_size, hidden_size"),
    # ------------------------------------------------------------------ LSTMCellFunction
    ("LSTMCellFunction", "backward recomputes the forward and calls torch.autograd.grad",
     _CELL_BACKWARD,
     _RECOMPUTE + "        return torch.autograd.grad((h_next, c_next), inputs, (dh_next, dc_next))"),
    ("LSTMCellFunction", "backward recomputes the forward and calls .backward()",
     _CELL_BACKWARD,
     _RECOMPUTE + "            (h_next * dh_next + c_next * dc_next).sum().backward()\n"
                  "        return tuple(t.grad for t in inputs)"),
    ("LSTMCellFunction", "forward calls torch.lstm_cell",
     "c_next = f * c + i * g\n        tanh_c = torch.tanh(c_next)\n        h_next = o * tanh_c",
     "h_next, c_next = torch.lstm_cell(x, (h, c), Wx.T, Wh.T, b)\n        tanh_c = torch.tanh(c_next)"),
    ("LSTMCellFunction", "forward calls torch.nn.LSTMCell",
     "c_next = f * c + i * g\n        tanh_c = torch.tanh(c_next)\n        h_next = o * tanh_c",
     "cell = torch.nn.LSTMCell(x.shape[1], H, device=x.device, dtype=x.dtype)\n"
     "        with torch.no_grad():\n"
     "            cell.weight_ih.copy_(Wx.T)\n"
     "            cell.weight_hh.copy_(Wh.T)\n"
     "            cell.bias_ih.copy_(b)\n"
     "            cell.bias_hh.zero_()\n"
     "            h_next, c_next = cell(x, (h, c))\n"
     "        tanh_c = torch.tanh(c_next)"),
    ("LSTMCellFunction", "backward without the path through h_next",
     "dc = dc_next + dh_next * o * (1 - tanh_c ** 2)", "dc = dc_next"),
    ("LSTMCellFunction", "da in the order i, g, f, o",
     "da = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f),\n"
     "                        dc * i * (1 - g ** 2), dh_next * tanh_c * o * (1 - o)], dim=1)",
     "da = torch.cat([dc * g * i * (1 - i), dc * i * (1 - g ** 2),\n"
     "                        dc * c * f * (1 - f), dh_next * tanh_c * o * (1 - o)], dim=1)"),
    ("LSTMCellFunction", "gradients returned in the wrong order",
     "return dx, dh, dc_prev, dWx, dWh, db", "return dx, dc_prev, dh, dWx, dWh, db"),
    ("LSTMCellFunction", "a float32 CPU buffer in backward",
     "da = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f),\n"
     "                        dc * i * (1 - g ** 2), dh_next * tanh_c * o * (1 - o)], dim=1)",
     "H = h.shape[1]\n"
     "        da = torch.zeros(x.shape[0], 4 * H)\n"
     "        da[:, :H] = dc * g * i * (1 - i)\n"
     "        da[:, H:2 * H] = dc * c * f * (1 - f)\n"
     "        da[:, 2 * H:3 * H] = dc * i * (1 - g ** 2)\n"
     "        da[:, 3 * H:] = dh_next * tanh_c * o * (1 - o)"),
    ("LSTMCellFunction", "the input c modified in place",
     "c_next = f * c + i * g", "c_next = c.mul_(f).add_(i * g)"),
    # ------------------------------------------------------------------ lstm_peephole_step_forward
    ("lstm_peephole_step_forward", "the output gate peeks at c_prev",
     "o = 0.5 * (1 + np.tanh(0.5 * (a[:, 3 * H:] + c_next * p[2])))",
     "o = 0.5 * (1 + np.tanh(0.5 * (a[:, 3 * H:] + c_prev * p[2])))"),
    ("lstm_peephole_step_forward", "no peephole on the output gate",
     "o = 0.5 * (1 + np.tanh(0.5 * (a[:, 3 * H:] + c_next * p[2])))",
     "o = 0.5 * (1 + np.tanh(0.5 * a[:, 3 * H:]))"),
    ("lstm_peephole_step_forward", "p_i and p_f swapped",
     "i = 0.5 * (1 + np.tanh(0.5 * (a[:, :H] + c_prev * p[0])))\n"
     "    f = 0.5 * (1 + np.tanh(0.5 * (a[:, H:2 * H] + c_prev * p[1])))",
     "i = 0.5 * (1 + np.tanh(0.5 * (a[:, :H] + c_prev * p[1])))\n"
     "    f = 0.5 * (1 + np.tanh(0.5 * (a[:, H:2 * H] + c_prev * p[0])))"),
    ("lstm_peephole_step_forward", "tanh(c_next) cached in place of c_next",
     "cache = (x, h_prev, c_prev, Wx, Wh, p, gates, c_next, tanh_c)",
     "cache = (x, h_prev, c_prev, Wx, Wh, p, gates, tanh_c, tanh_c)",
     ("lstm_peephole_step_backward",)),
    # ------------------------------------------------------------------ lstm_peephole_step_backward
    ("lstm_peephole_step_backward", "dc without the output gate's peephole term",
     "dc = dc_next + dh_next * o * (1 - tanh_c ** 2) + da_o * p[2]",
     "dc = dc_next + dh_next * o * (1 - tanh_c ** 2)"),
    ("lstm_peephole_step_backward", "dc_prev without the i and f peephole terms",
     "dc_prev = dc * f + da_i * p[0] + da_f * p[1]", "dc_prev = dc * f"),
    ("lstm_peephole_step_backward", "dp not summed over the batch (mean)",
     "dp = np.stack([(da_i * c_prev).sum(axis=0), (da_f * c_prev).sum(axis=0),\n"
     "                   (da_o * c_next).sum(axis=0)])",
     "dp = np.stack([(da_i * c_prev).mean(axis=0), (da_f * c_prev).mean(axis=0),\n"
     "                   (da_o * c_next).mean(axis=0)])"),
    ("lstm_peephole_step_backward", "dp_o from c_prev",
     "(da_o * c_next).sum(axis=0)])", "(da_o * c_prev).sum(axis=0)])"),
    ("lstm_peephole_step_backward", "the sigmoid derivative left out of dc_prev's peephole terms",
     "dc_prev = dc * f + da_i * p[0] + da_f * p[1]",
     "dc_prev = dc * f + dc * g * p[0] + dc * c_prev * p[1]"),
]
