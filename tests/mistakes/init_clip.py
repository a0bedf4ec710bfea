"""Plausible student mistakes in the init_clip assignment, as text replacements in one answer
cell each: (function, description, old_text, new_text). Each must fail that function's hidden
check and no other."""

MISTAKES = [
    # ------------------------------------------------------------------ orthogonal
    ("orthogonal", "no sign correction of Q by R's diagonal",
     "    q = q * np.sign(np.diag(r))\n", ""),
    ("orthogonal", "the signs multiply the rows of Q instead of its columns",
     "q = q * np.sign(np.diag(r))", "q = np.sign(np.diag(r))[:, None] * q"),
    ("orthogonal", "Q is not transposed back when rows < cols",
     "    if rows < cols:\n        q = q.T\n", ""),
    ("orthogonal", "the gain is not applied",
     "return gain * q.reshape(shape)", "return q.reshape(shape)"),
    ("orthogonal", "the gain is applied squared",
     "return gain * q.reshape(shape)", "return gain ** 2 * q.reshape(shape)"),
    ("orthogonal", "the rng argument is ignored (a fresh unseeded generator)",
     "rng = np.random.default_rng(rng)", "rng = np.random.default_rng()"),
    ("orthogonal", "cols = shape[1] instead of the product of shape[1:]",
     "cols = int(np.prod(shape[1:]))", "cols = shape[1]"),
    ("orthogonal", "the Gaussian's columns are normalized instead of orthogonalized",
     "    q, r = np.linalg.qr(a)\n    q = q * np.sign(np.diag(r))\n",
     "    q = a / np.linalg.norm(a, axis=0)\n"),
    ("orthogonal", "U of the SVD without any sign correction",
     "    q, r = np.linalg.qr(a)\n    q = q * np.sign(np.diag(r))\n",
     "    q = np.linalg.svd(a, full_matrices=False)[0]\n"),
    ("orthogonal", "a Generator passed in is replaced by a new one seeded from it",
     "rng = np.random.default_rng(rng)",
     "rng = np.random.default_rng(rng if not isinstance(rng, np.random.Generator) "
     "else rng.bit_generator.seed_seq)"),

    # ------------------------------------------------------------------ clip_grad_norm
    ("clip_grad_norm", "the slide's bug: the squared norm is compared with max_norm and divided by",
     "total_norm = float(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())))",
     "total_norm = float(sum(np.sum(g ** 2) for g in grads.values()))"),
    ("clip_grad_norm", "one norm per array instead of the global norm",
     "clipped = {name: g * coef for name, g in grads.items()}",
     "clipped = {name: g * min(1.0, max_norm / (np.sqrt(np.sum(g ** 2)) + 1e-6))\n"
     "               for name, g in grads.items()}"),
    ("clip_grad_norm", "no 1e-6 in the denominator",
     "max_norm / (total_norm + 1e-6)", "max_norm / total_norm"),
    ("clip_grad_norm", "the gradients are clipped in place",
     "clipped = {name: g * coef for name, g in grads.items()}",
     "for g in grads.values():\n        g *= coef\n    clipped = grads"),
    ("clip_grad_norm", "the norm after clipping is returned",
     "return clipped, total_norm", "return clipped, min(total_norm, max_norm)"),
    ("clip_grad_norm", "always rescaled to max_norm (no min with 1)",
     "coef = min(1.0, max_norm / (total_norm + 1e-6))",
     "coef = max_norm / (total_norm + 1e-6)"),
    ("clip_grad_norm", "the input arrays are returned when nothing is clipped",
     "    clipped = {name: g * coef for name, g in grads.items()}\n",
     "    if coef == 1.0:\n        return grads, total_norm\n"
     "    clipped = {name: g * coef for name, g in grads.items()}\n"),
    ("clip_grad_norm", "the norm is returned as a 1-element array",
     "return clipped, total_norm", "return clipped, np.array([total_norm])"),

    # ------------------------------------------------------------------ clip_grad_value
    ("clip_grad_value", "only the upper side is clipped",
     "np.clip(g, -clip_value, clip_value)", "np.minimum(g, clip_value)"),
    ("clip_grad_value", "clipped to [0, clip_value]",
     "np.clip(g, -clip_value, clip_value)", "np.clip(g, 0, clip_value)"),
    ("clip_grad_value", "large negative values become +clip_value",
     "np.clip(g, -clip_value, clip_value)", "np.where(np.abs(g) > clip_value, clip_value, g)"),
    ("clip_grad_value", "the gradients are clipped in place",
     "np.clip(g, -clip_value, clip_value)", "np.clip(g, -clip_value, clip_value, out=g)"),
    ("clip_grad_value", "each array is clipped by its norm instead of by value",
     "np.clip(g, -clip_value, clip_value)",
     "g * min(1.0, clip_value / (np.linalg.norm(g) + 1e-6))"),
]
