"""Plausible student mistakes in the answer cells of char_rnn, as text replacements.

Each entry is (function, description, old_text, new_text); old_text occurs in the answer
cell of ``function`` (its solution code, marker lines removed). Every mistake must fail the
hidden check of its function and no other (tests/test_assignment_checks.py).
"""

MISTAKES = [
    # ------------------------------------------------------------------ temporal_softmax_loss
    ("temporal_softmax_loss", "no max subtraction: exp overflows for logits around 1000",
     "shifted = logits - logits.max(axis=2, keepdims=True)", "shifted = logits"),
    ("temporal_softmax_loss", "mean over N*T steps instead of the unmasked ones",
     "count = mask.sum()", "count = N * T"),
    ("temporal_softmax_loss", "mean over the batch N instead of the counted steps",
     "count = mask.sum()", "count = N"),
    ("temporal_softmax_loss", "gradient not divided by the count",
     "dlogits *= mask[:, :, None] / count", "dlogits *= mask[:, :, None]"),
    ("temporal_softmax_loss", "mask ignored in the gradient",
     "dlogits *= mask[:, :, None] / count", "dlogits /= count"),
    ("temporal_softmax_loss", "mask ignored in the loss (masked steps summed)",
     "loss = nll[mask].sum() / count", "loss = nll.sum() / count"),
    ("temporal_softmax_loss", "the -1 at the target forgotten in the gradient",
     "dlogits[n, t, targets] -= 1.0", "pass"),
    ("temporal_softmax_loss", "gradient with the wrong sign (onehot - p)",
     "dlogits = np.exp(log_probs)  # the softmax probabilities\n    dlogits[n, t, targets] -= 1.0",
     "dlogits = -np.exp(log_probs)  # the softmax probabilities\n    dlogits[n, t, targets] += 1.0"),
    ("temporal_softmax_loss", "logits shifted in place (the caller's array is modified)",
     "shifted = logits - logits.max(axis=2, keepdims=True)",
     "logits -= logits.max(axis=2, keepdims=True)\n    shifted = logits"),

    # ------------------------------------------------------------------ perplexity
    ("perplexity", "returns bits per character instead of perplexity",
     "return math.exp(mean_nll)", "return mean_nll / math.log(2)"),
    ("perplexity", "2 ** mean_nll (mean_nll taken as bits)",
     "return math.exp(mean_nll)", "return 2.0 ** mean_nll"),
    ("perplexity", "exp(-mean_nll)",
     "return math.exp(mean_nll)", "return math.exp(-mean_nll)"),
    ("perplexity", "no overflow guard: OverflowError for a diverged model",
     "try:\n        return math.exp(mean_nll)\n    except OverflowError:  # mean_nll above ~709.78, "
     "a diverged model\n        return math.inf",
     "return math.exp(mean_nll)"),
    ("perplexity", "overflow returns a large finite number instead of inf",
     "return math.inf", "return 1e308"),

    # ------------------------------------------------------------------ sample_next
    ("sample_next", "logits multiplied by the temperature",
     "z = logits / temperature", "z = logits * temperature"),
    ("sample_next", "temperature ignored",
     "z = logits / temperature", "z = logits"),
    ("sample_next", "temperature applied after the softmax",
     "z = logits / temperature\n    probs = np.exp(z - z.max())\n    probs = probs / probs.sum()",
     "probs = np.exp(logits - logits.max())\n    probs = probs / probs.sum() / temperature\n"
     "    probs = probs / probs.sum()"),
    ("sample_next", "no special case for temperature 0 (division by zero)",
     "    if temperature == 0:\n        return int(np.argmax(logits))\n", ""),
    ("sample_next", "temperature 0 replaced by a tiny temperature (ties drawn at random)",
     "if temperature == 0:\n        return int(np.argmax(logits))\n",
     "temperature = max(temperature, 1e-3)\n"),
    ("sample_next", "no max subtraction: exp overflows for large logits",
     "probs = np.exp(z - z.max())", "probs = np.exp(z)"),
    ("sample_next", "logits divided in place",
     "z = logits / temperature", "logits /= temperature\n    z = logits"),
    ("sample_next", "an int seed ignored (a new unseeded generator)",
     "rng = np.random.default_rng(rng)", "rng = np.random.default_rng()"),
    ("sample_next", "draws from np.random's global state instead of rng",
     "rng.choice(len(logits), p=probs)", "np.random.choice(len(logits), p=probs)"),
    ("sample_next", "returns an array of one index instead of an int",
     "return int(rng.choice(len(logits), p=probs))", "return rng.choice(len(logits), 1, p=probs)"),
    ("sample_next", "samples from the logits without the softmax",
     "probs = np.exp(z - z.max())", "probs = z - z.min()"),
]
