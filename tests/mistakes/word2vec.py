"""Plausible student mistakes in the word2vec answer cells: (function, description, old, new).

Each is a text replacement in the solution code of one answer cell; the test suite checks
that it fails that function's hidden check and no other.
"""

MISTAKES = [
    # ------------------------------------------------------------------ skipgram_pairs
    ("skipgram_pairs", "the center paired with itself (j == i kept)",
     "            if j != i:\n", "            if True:\n"),
    ("skipgram_pairs", "the window stops one short on the right",
     "min(L, i + window + 1)", "min(L, i + window)"),
    ("skipgram_pairs", "no clipping at the start: negative j wraps around to the end",
     "range(max(0, i - window),", "range(i - window,"),
    ("skipgram_pairs", "(context, center) instead of (center, context)",
     "pairs.append((token_ids[i], token_ids[j]))", "pairs.append((token_ids[j], token_ids[i]))"),
    ("skipgram_pairs", "shape (0,) instead of (0, 2) when there is no pair",
     "np.array(pairs, dtype=np.int64).reshape(-1, 2)", "np.array(pairs, dtype=np.int64)"),
    ("skipgram_pairs", "keeps the dtype of token_ids (int32 in, int32 out)",
     "np.array(pairs, dtype=np.int64)", "np.array(pairs, dtype=token_ids.dtype)"),
    ("skipgram_pairs", "offsets in the outer loop: the right pairs in the wrong order",
     """    for i in range(L):
        for j in range(max(0, i - window), min(L, i + window + 1)):
            if j != i:
                pairs.append((token_ids[i], token_ids[j]))""",
     """    for d in list(range(-window, 0)) + list(range(1, window + 1)):
        for i in range(L):
            j = i + d
            if 0 <= j < L:
                pairs.append((token_ids[i], token_ids[j]))"""),

    # ------------------------------------------------------------------ cbow_windows
    ("cbow_windows", "the center word left in the context (and the last context word dropped)",
     "token_ids[i + 1:i + window + 1]", "token_ids[i:i + window]"),
    ("cbow_windows", "no max(.., 0): a negative M when the corpus is too short",
     "M = max(L - 2 * window, 0)", "M = L - 2 * window"),
    ("cbow_windows", "the last full window dropped (off by one)",
     "M = max(L - 2 * window, 0)", "M = max(L - 2 * window - 1, 0)"),
    ("cbow_windows", "the center read at the row index instead of the position",
     "centers[r] = token_ids[i]", "centers[r] = token_ids[r]"),
    ("cbow_windows", "contexts in the dtype of token_ids",
     "contexts = np.zeros((M, 2 * window), dtype=np.int64)",
     "contexts = np.zeros((M, 2 * window), dtype=token_ids.dtype)"),

    # ------------------------------------------------------------------ naive softmax
    ("naive_softmax_loss_and_gradient", "no max shift: exp overflows for large scores",
     "    scores = scores - scores.max()  # shift: every exponent <= 0\n", ""),
    ("naive_softmax_loss_and_gradient", "loss as -log(probs[o]): underflows to inf",
     "    loss = log_sum - scores[outside_idx]\n    probs = np.exp(scores - log_sum)  # softmax(scores)\n",
     "    probs = np.exp(scores - log_sum)  # softmax(scores)\n    loss = -np.log(probs[outside_idx])\n"),
    ("naive_softmax_loss_and_gradient", "the one-hot y not subtracted (gradient of log Z only)",
     "    delta[outside_idx] -= 1.0  # y_hat - y\n", ""),
    ("naive_softmax_loss_and_gradient", "grad_U uses y_hat, not y_hat - y",
     "grad_outside_vectors = np.outer(delta, center_vec)",
     "grad_outside_vectors = np.outer(probs, center_vec)"),
    ("naive_softmax_loss_and_gradient", "grad_center_vec: a missing transpose",
     "grad_center_vec = outside_vectors.T @ delta", "grad_center_vec = outside_vectors @ delta"),
    ("naive_softmax_loss_and_gradient", "the loss sign flipped",
     "loss = log_sum - scores[outside_idx]", "loss = scores[outside_idx] - log_sum"),
    ("naive_softmax_loss_and_gradient", "grad_U transposed: outer(v_c, y_hat - y), (D, V)",
     "np.outer(delta, center_vec)", "np.outer(center_vec, delta)"),

    # ------------------------------------------------------------------ negative sampling
    ("neg_sampling_loss_and_gradient", "grad[idx] += ... with fancy indexing drops repeated negatives",
     "np.add.at(grad_outside_vectors, neg_indices, np.outer(sig_neg, center_vec))",
     "grad_outside_vectors[neg_indices] += np.outer(sig_neg, center_vec)"),
    ("neg_sampling_loss_and_gradient", "rows assigned instead of added: o drawn as a negative is overwritten",
     "    grad_outside_vectors[outside_idx] += (sig_o - 1.0) * center_vec\n"
     "    np.add.at(grad_outside_vectors, neg_indices, np.outer(sig_neg, center_vec))\n",
     "    np.add.at(grad_outside_vectors, neg_indices, np.outer(sig_neg, center_vec))\n"
     "    grad_outside_vectors[outside_idx] = (sig_o - 1.0) * center_vec\n"),
    ("neg_sampling_loss_and_gradient", "loss as -log(sigmoid): log(0) for scores of size 800",
     "loss = np.logaddexp(0.0, -s_o) + np.sum(np.logaddexp(0.0, s_neg))",
     "loss = -np.log(1 / (1 + np.exp(-s_o))) - np.sum(np.log(1 / (1 + np.exp(s_neg))))"),
    ("neg_sampling_loss_and_gradient", "sigmoid as exp(x) / (1 + exp(x)): nan for large x",
     "sig_neg = 0.5 * (1.0 + np.tanh(0.5 * s_neg))  # sigmoid(s_k)",
     "sig_neg = np.exp(s_neg) / (1.0 + np.exp(s_neg))"),
    ("neg_sampling_loss_and_gradient", "the negatives' sign flipped in the loss",
     "np.sum(np.logaddexp(0.0, s_neg))", "np.sum(np.logaddexp(0.0, -s_neg))"),
    ("neg_sampling_loss_and_gradient", "a mean over the negatives instead of a sum",
     "np.sum(np.logaddexp(0.0, s_neg))", "np.mean(np.logaddexp(0.0, s_neg))"),
    ("neg_sampling_loss_and_gradient", "sigma(s_o) instead of sigma(s_o) - 1 in grad_center_vec",
     "grad_center_vec = (sig_o - 1.0) * u_o + sig_neg @ u_neg",
     "grad_center_vec = sig_o * u_o + sig_neg @ u_neg"),
    ("neg_sampling_loss_and_gradient", "the negatives' rows of grad_U use sigma(-s_k)",
     "np.outer(sig_neg, center_vec))", "np.outer(1.0 - sig_neg, center_vec))"),

    # ------------------------------------------------------------------ noise distribution
    ("noise_distribution", "zero counts get mass when power is 0 (0 ** 0 = 1)",
     "    weights[counts == 0] = 0.0  # 0 ** 0 would give unseen words mass\n", ""),
    ("noise_distribution", "the power ignored (always 0.75)",
     "counts.astype(np.float64) ** power", "counts.astype(np.float64) ** 0.75"),
    ("noise_distribution", "normalized by the counts, not by the powered counts",
     "return weights / weights.sum()", "return weights / counts.sum()"),
    ("noise_distribution", "the default power 1 (the unigram distribution)",
     "def noise_distribution(counts, power=0.75):", "def noise_distribution(counts, power=1.0):"),
    ("noise_distribution", "normalized before the power instead of after (no longer sums to 1)",
     "    weights = counts.astype(np.float64) ** power\n",
     "    weights = (counts / counts.sum()) ** power\n    return weights\n"),

    # ------------------------------------------------------------------ NCE
    ("nce_loss_and_gradient", "the correction log(K P_n(w)) dropped: negative sampling",
     "shift = np.log(K * noise_probs[idx])", "shift = np.zeros(K + 1)"),
    ("nce_loss_and_gradient", "the correction added instead of subtracted",
     "shift = np.log(K * noise_probs[idx])", "shift = -np.log(K * noise_probs[idx])"),
    ("nce_loss_and_gradient", "log P_n(w) without the factor K",
     "shift = np.log(K * noise_probs[idx])", "shift = np.log(noise_probs[idx])"),
    ("nce_loss_and_gradient", "K counted as the distinct negatives, not the draws",
     "    K = len(neg_indices)\n", "    K = len(np.unique(neg_indices))\n"),
    ("nce_loss_and_gradient", "a repeated negative's gradient counted once (fancy-index +=)",
     "np.add.at(grad_outside_vectors, neg_indices, np.outer(sig_neg, center_vec))",
     "grad_outside_vectors[neg_indices] += np.outer(sig_neg, center_vec)"),
    ("nce_loss_and_gradient", "the correction applied to the observed word only",
     "x_neg = u_neg @ center_vec - shift[1:]", "x_neg = u_neg @ center_vec"),
    ("nce_loss_and_gradient", "sigmoid as exp(x) / (1 + exp(x)): nan for large x",
     "sig_neg = 0.5 * (1.0 + np.tanh(0.5 * x_neg))  # sigmoid(x_k)",
     "sig_neg = np.exp(x_neg) / (1.0 + np.exp(x_neg))"),

    # ------------------------------------------------------------------ CBOW
    ("cbow_loss_and_gradient", "the sum of the context vectors instead of their mean",
     "h = input_vectors[context_idx].mean(axis=0)", "h = input_vectors[context_idx].sum(axis=0)"),
    ("cbow_loss_and_gradient", "every context row gets the whole gradient of h (no 1/2m)",
     "np.add.at(grad_input_vectors, context_idx, grad_h / C)",
     "np.add.at(grad_input_vectors, context_idx, grad_h)"),
    ("cbow_loss_and_gradient", "repeated context ids not accumulated (fancy-index +=)",
     "np.add.at(grad_input_vectors, context_idx, grad_h / C)",
     "grad_input_vectors[context_idx] += grad_h / C"),
    ("cbow_loss_and_gradient", "the gradient sent to the center word's input row",
     "np.add.at(grad_input_vectors, context_idx, grad_h / C)",
     "grad_input_vectors[center_idx] += grad_h"),
    ("cbow_loss_and_gradient", "the mean over the distinct context ids",
     "h = input_vectors[context_idx].mean(axis=0)",
     "h = input_vectors[np.unique(context_idx)].mean(axis=0)"),
    ("cbow_loss_and_gradient", "no max shift: exp overflows for large scores",
     "    scores = scores - scores.max()  # shift: every exponent <= 0\n", ""),
    ("cbow_loss_and_gradient", "grad_U uses the outer product with the first context vector, not h",
     "grad_outside_vectors = np.outer(delta, h)",
     "grad_outside_vectors = np.outer(delta, input_vectors[context_idx[0]])"),

    # ------------------------------------------------------------------ cosine similarity
    ("cosine_similarity", "divided by the squared norm of a only",
     "(np.linalg.norm(a) * np.linalg.norm(b))", "(np.linalg.norm(a) ** 2)"),
    ("cosine_similarity", "the norms added instead of multiplied",
     "(np.linalg.norm(a) * np.linalg.norm(b))", "(np.linalg.norm(a) + np.linalg.norm(b))"),
    ("cosine_similarity", "element-wise product, not a dot product (an array comes back)",
     "return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))",
     "return a * b / (np.linalg.norm(a) * np.linalg.norm(b))"),
    ("cosine_similarity", "the sum of squares instead of the norm",
     "(np.linalg.norm(a) * np.linalg.norm(b))", "(np.sum(a ** 2) * np.sum(b ** 2))"),

    # ------------------------------------------------------------------ most_similar
    ("most_similar", "ranked by dot product (rows not normalized)",
     "unit = embeddings / np.where(norms == 0, 1.0, norms)  # a zero row stays zero",
     "unit = embeddings"),
    ("most_similar", "ties broken by the higher index (argsort reversed)",
     "np.argsort(-sims, kind=\"stable\")[:k]", "np.argsort(sims, kind=\"stable\")[::-1][:k]"),
    ("most_similar", "exclude ignored",
     "    sims[list(exclude)] = -np.inf\n", ""),
    ("most_similar", "the first result skipped, as if it were always the query",
     "np.argsort(-sims, kind=\"stable\")[:k]", "np.argsort(-sims, kind=\"stable\")[1:k + 1]"),
    ("most_similar", "embeddings normalized in place",
     "unit = embeddings / np.where(norms == 0, 1.0, norms)  # a zero row stays zero",
     "embeddings /= np.where(norms == 0, 1.0, norms)\n    unit = embeddings"),
    ("most_similar", "a zero row divided by zero (nan similarity)",
     "unit = embeddings / np.where(norms == 0, 1.0, norms)  # a zero row stays zero",
     "unit = embeddings / norms"),

    # ------------------------------------------------------------------ analogy
    ("analogy", "a - b + c instead of b - a + c",
     "target = unit[b] - unit[a] + unit[c]", "target = unit[a] - unit[b] + unit[c]"),
    ("analogy", "c not excluded",
     "exclude=(a, b, c)", "exclude=(a, b)"),
    ("analogy", "rows not normalized before the offset",
     "target = unit[b] - unit[a] + unit[c]",
     "target = embeddings[b] - embeddings[a] + embeddings[c]"),
    ("analogy", "an array returned instead of an int",
     "return int(most_similar(target, unit, 1, exclude=(a, b, c))[0])",
     "return most_similar(target, unit, 1, exclude=(a, b, c))"),
    ("analogy", "embeddings normalized in place",
     "    unit = embeddings / np.where(norms == 0, 1.0, norms)\n",
     "    embeddings /= np.where(norms == 0, 1.0, norms)\n    unit = embeddings\n"),
]
