"""Plausible student mistakes in the answer cells of solutions/word_lm/word_lm.ipynb.

Each entry is (function, description, old text, new text), or the same with a fifth item,
the functions whose checks it fails: the replacement is made in that function's answer cell,
and the test suite checks that it fails that function's hidden check (or those listed) and no
other. A cache that holds the wrong arrays, the outputs being right, costs the backward that
reads it.
"""

MISTAKES = [
    # ------------------------------------------------------------------ embedding_forward
    ("embedding_forward", "ids read as 1-based (row x - 1)",
     "out = W[x]", "out = W[x - 1]"),
    ("embedding_forward", "ids read time-major, then reshaped to (N, T, D)",
     "out = W[x]", "out = W[x.T.reshape(-1)].reshape(x.shape[0], x.shape[1], -1)"),
    ("embedding_forward", "out built in an array of the ids' integer dtype",
     "out = W[x]", "out = np.zeros(x.shape + (W.shape[1],), dtype=x.dtype)\n    out[...] = W[x]"),
    ("embedding_forward", "out laid out time first (T, N, D)",
     "out = W[x]", "out = W[x.T]"),
    ("embedding_forward", "cache holds out instead of W",
     "cache = (x, W)", "cache = (x, out)",
     ("embedding_backward",)),

    # ------------------------------------------------------------------ embedding_backward
    ("embedding_backward", "fancy-index += (repeated ids keep one gradient)",
     "np.add.at(dW, x, dout)", "dW[x] += dout"),
    ("embedding_backward", "fancy-index assignment",
     "np.add.at(dW, x, dout)", "dW[x] = dout"),
    ("embedding_backward", "dW starts from W instead of zeros",
     "dW = np.zeros_like(W)", "dW = W.copy()"),
    ("embedding_backward", "gradient added into W itself (the cache entry modified)",
     "dW = np.zeros_like(W)", "dW = W\n    dW[:] = 0"),

    # ------------------------------------------------------------------ temporal_affine_forward
    ("temporal_affine_forward", "bias forgotten",
     "out = (x.reshape(N * T, D) @ w).reshape(N, T, -1) + b",
     "out = (x.reshape(N * T, D) @ w).reshape(N, T, -1)"),
    ("temporal_affine_forward", "product reshaped back time first",
     "out = (x.reshape(N * T, D) @ w).reshape(N, T, -1) + b",
     "out = (x.reshape(N * T, D) @ w).reshape(T, N, -1).swapaxes(0, 1) + b"),
    ("temporal_affine_forward", "weight transposed",
     "out = (x.reshape(N * T, D) @ w).reshape(N, T, -1) + b",
     "out = (x.reshape(N * T, D) @ w.T).reshape(N, T, -1) + b"),
    ("temporal_affine_forward", "cache holds out instead of x",
     "cache = (x, w)", "cache = (out, w)",
     ("temporal_affine_backward",)),

    # ------------------------------------------------------------------ temporal_affine_backward
    ("temporal_affine_backward", "db summed over the batch only",
     "db = dout.sum(axis=(0, 1))", "db = dout.sum(axis=0)"),
    ("temporal_affine_backward", "db a mean instead of a sum",
     "db = dout.sum(axis=(0, 1))", "db = dout.mean(axis=(0, 1))"),
    ("temporal_affine_backward", "dout reshaped time first against x batch first in dw",
     "dw = x.reshape(N * T, D).T @ dout.reshape(N * T, M)",
     "dw = x.reshape(N * T, D).T @ dout.swapaxes(0, 1).reshape(N * T, M)"),
    ("temporal_affine_backward", "dw from the last step only",
     "dw = x.reshape(N * T, D).T @ dout.reshape(N * T, M)",
     "dw = x[:, -1].T @ dout[:, -1]"),

    # ------------------------------------------------------------------ tied_embedding_backward
    ("tied_embedding_backward", "the read-out's use only",
     "dW = dW_in + dW_out_T.T", "dW = dW_out_T.T"),
    ("tied_embedding_backward", "the embedding's use only",
     "dW = dW_in + dW_out_T.T", "dW = dW_in"),
    ("tied_embedding_backward", "the embedding's use with fancy-index += (repeated ids)",
     "dW_in = embedding_backward(dembed, (x, W))",
     "dW_in = np.zeros_like(W)\n    dW_in[x] += dembed"),
    ("tied_embedding_backward", "the read-out's gradient subtracted",
     "dW = dW_in + dW_out_T.T", "dW = dW_in - dW_out_T.T"),
    ("tied_embedding_backward", "a forward called to rebuild the read-out's cache",
     "_, dW_out_T, _ = temporal_affine_backward(dscores, (h, W.T))",
     "_, dW_out_T, _ = temporal_affine_backward(\n"
     "        dscores, temporal_affine_forward(h, W.T, np.zeros(W.shape[0]))[1])"),
]
