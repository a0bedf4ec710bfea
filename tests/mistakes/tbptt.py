"""Plausible student mistakes in the answer cells of tbptt, as text replacements.

Each entry is (function, description, old_text, new_text); old_text occurs in the answer
cell of ``function`` (its solution code, marker lines removed). Every mistake must fail the
hidden check of its function and no other (tests/test_assignment_checks.py).
"""

MISTAKES = [
    # ------------------------------------------------------------------ tbptt_batches
    ("tbptt_batches", "targets are the inputs themselves (no shift)",
     "inputs, targets = data[:n], data[1:n + 1]", "inputs, targets = data[:n], data[:n]"),
    ("tbptt_batches", "inputs and targets swapped",
     "inputs, targets = data[:n], data[1:n + 1]", "inputs, targets = data[1:n + 1], data[:n]"),
    ("tbptt_batches", "chunk-major reshape: consecutive pieces side by side, no streams",
     "reshape(batch_size, K, seq_len, -1).transpose(1, 0, 2, 3)",
     "reshape(K, batch_size, seq_len, -1)"),
    ("tbptt_batches", "stream-major result: the chunk axis not moved to the front",
     "reshape(batch_size, K, seq_len, -1).transpose(1, 0, 2, 3)",
     "reshape(batch_size, K, seq_len, -1)"),
    ("tbptt_batches", "K counts the values, not the input/target pairs",
     "K = (len(data) - 1) // (batch_size * seq_len)", "K = len(data) // (batch_size * seq_len)"),
    ("tbptt_batches", "the feature axis dropped",
     "reshape(batch_size, K, seq_len, -1)", "reshape(batch_size, K, seq_len)"),
    ("tbptt_batches", "streams interleaved (stream b takes every B-th step)",
     "reshape(batch_size, K, seq_len, -1).transpose(1, 0, 2, 3)",
     "reshape(K, seq_len, batch_size, -1).transpose(0, 2, 1, 3)"),

    # ------------------------------------------------------------------ truncated_rnn_backward
    ("truncated_rnn_backward", "the cut also at t = 0 (dh0 = 0)",
     "if t > 0 and t % k == 0:", "if t % k == 0:"),
    ("truncated_rnn_backward", "cut one step too late (off by one)",
     "if t > 0 and t % k == 0:", "if t > 0 and (t + 1) % k == 0:"),
    ("truncated_rnn_backward", "chunks counted from the end of the sequence",
     "if t > 0 and t % k == 0:", "if t > 0 and (T - t) % k == 0:"),
    ("truncated_rnn_backward", "never cut (full BPTT)",
     "if t > 0 and t % k == 0:", "if False:"),
    ("truncated_rnn_backward", "the first step of a chunk left out of dWh",
     "dWh += h_prev.T @ da", "dWh += h_prev.T @ da if t == 0 or t % k else 0"),
    ("truncated_rnn_backward", "a chunk's detached input state taken as zero in dWh",
     "h_prev = h[:, t - 1] if t > 0 else h0",
     "h_prev = h0 if t == 0 else (h[:, t - 1] if t % k else np.zeros_like(h0))"),
    ("truncated_rnn_backward", "the upstream gradient dropped at chunk starts too",
     "da = (dh[:, t] + dh_carry) * (1 - h[:, t] ** 2)",
     "da = (dh[:, t] * (t == 0 or t % k != 0) + dh_carry) * (1 - h[:, t] ** 2)"),
    ("truncated_rnn_backward", "the carried gradient added into dh in place",
     "da = (dh[:, t] + dh_carry) * (1 - h[:, t] ** 2)",
     "dh[:, t] += dh_carry\n        da = dh[:, t] * (1 - h[:, t] ** 2)"),
]
