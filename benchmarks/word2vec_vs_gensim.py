"""Skip-gram with negative sampling: the course's PyTorch trainer against gensim, side by side.

Both models train on the corpus of chapter 9 (book/09_word2vec.md): all of Shakespeare
(``corpora.shakespeare_text(plays=None)``), tokenized with ``corpora.tokenize_words``, a
vocabulary of the words seen at least MIN_COUNT = 5 times (``corpora.build_vocab``). Ours is
``autograder.lab.word2vec.train_skipgram`` on the in-vocabulary token ids; gensim is
``Word2Vec(sg=1, hs=0)`` on the same tokens cut into 10,000-token sentences (gensim's maximum
sentence length), exactly as in the book. Both get the same vocabulary (asserted, counts
too) and the same hyperparameters: 100 dimensions, window 5 (shrunk at random, in both), 5
negatives, ``sample`` 1e-3, --epochs passes (default 10), step 0.025 decaying linearly to
1e-4.

Speed, on the CPU with matched threads: for every T in --threads (default 1 and
os.cpu_count()) ours runs with ``num_threads=T`` (torch intra-op threads) and gensim with
``workers=T`` (worker threads; gensim adds one thread that feeds them). Words per second is
the same number for both: corpus tokens (every token of the text, before min_count, as gensim
counts its "raw words"; checked against what gensim's ``train`` returns) times epochs,
divided by the training wall time. Ours is ``stats.seconds`` of train_skipgram: its
training loop, the building and shuffling of every epoch's pairs included, the noise table
and the initialization not (on CUDA it synchronizes before reading the clock at every epoch's
end). Gensim's is the wall time of ``Word2Vec.train``; ``build_vocab`` (vocabulary scan, noise
table, initialization) is outside. CPU seconds (process time, all threads) are printed too.
A thread count's speed is the median over its --seeds runs; ours and gensim alternate run by
run, so that a change in the machine's load affects both alike. Targets: ours at least 0.25 of
gensim's words per second at every thread count.

Quality: Spearman correlation of the final input vectors' cosine similarities with
WordSim-353 (the target: ours at least 0.9 of gensim's) and, for information, SimLex-999
(``evaluate_word_similarity``; both sets from gensim's wheel via ``autograder.lab.data``),
with coverage (the pairs whose two words Shakespeare has). A single run is noisy, so every
run gets its own seed (--seed, --seed + 1, ...: thread count and repetition both change it)
and quality is the mean over all the runs of a model, len(--threads) x --seeds of them. The
thread count does not change what is computed: ours gives the same vectors for a seed at any
thread count, gensim's threads only reorder its lock-free updates.

GPU section (only when torch.cuda.is_available()): our trainer with device="cuda", --seeds
runs after one untimed warm-up, words per second (same definition) and WordSim-353, beside the
CPU figures. Otherwise the section says why it is skipped.

    python benchmarks/word2vec_vs_gensim.py [--epochs 10] [--seeds 1] [--seed 0] [--threads 1 2]

The default (10 epochs, 1 seed, threads 1 and 2) took 5 minutes on a 2-core machine that other
work was using too (load average about 2). Under such load, torch's OpenMP threads spin-wait
for one another and T > 1 can be much slower than T = 1 for ours; OMP_WAIT_POLICY=PASSIVE in
the environment avoids most of it (printed in the header).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import zlib
from dataclasses import dataclass

# As in the book: word2vec parallelizes over pairs (gensim's workers, torch's threads), never
# inside one vector operation, so NumPy's BLAS (which gensim's inner loop calls) gets one thread.
# It reads the variable when it is loaded, hence before importing numpy.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from autograder.lab import data  # noqa: E402
from autograder.lab.word2vec import SkipGramConfig, evaluate_word_similarity, train_skipgram  # noqa: E402
from coursekit import corpora  # noqa: E402

TARGET_QUALITY = 0.9  # WordSim-353 Spearman, ours / gensim (mean over runs)
TARGET_SPEED = 0.25  # words per second, ours / gensim, at every thread count on the CPU
MIN_COUNT = 5  # as in the book
SENTENCE = 10_000  # gensim's maximum sentence length (longer ones are truncated)
HP = dict(dim=100, window=5, negatives=5, sample=1e-3, lr=0.025, min_lr=1e-4)  # + epochs


def parse_args(argv=None):
    cpus = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="passes over the corpus (default 10, as in the book)")
    p.add_argument("--seeds", type=int, default=1,
                   help="timed runs per model and thread count, each with its own seed (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, cpus}),
                   help=f"CPU thread counts to compare (default 1 {cpus}, i.e. 1 and os.cpu_count())")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs: at least 1")
    if args.seeds < 1:
        p.error("--seeds: at least 1")
    if args.seed < 0:
        p.error("--seed: at least 0")
    if any(t < 1 for t in args.threads):
        p.error("--threads: each at least 1")
    if len(set(args.threads)) != len(args.threads):
        p.error("--threads: each thread count once")
    return args


@dataclass
class Corpus:
    tokens: list
    words: list
    word_to_id: dict
    counts: np.ndarray
    ids: np.ndarray
    sentences: list

    @property
    def V(self):
        return len(self.words)


def load_corpus():
    """The book's corpus: all of Shakespeare, its min_count vocabulary, ids and gensim sentences."""
    text = corpora.shakespeare_text(plays=None)
    tokens = corpora.tokenize_words(text)
    words, word_to_id, counts = corpora.build_vocab(tokens, min_count=MIN_COUNT)
    ids = np.array([word_to_id[t] for t in tokens if t in word_to_id], dtype=np.int64)
    sentences = [tokens[i:i + SENTENCE] for i in range(0, len(tokens), SENTENCE)]
    return Corpus(tokens, words, word_to_id, counts, ids, sentences)


def _crc32(s):
    """gensim's hashfxn, fixed (Python's str hash is salted per process), as in the book."""
    return zlib.crc32(s.encode())


def quality(E, w2i, wordsim, simlex):
    ws, ws_cov, ws_n = evaluate_word_similarity(E, w2i, wordsim)
    sl, sl_cov, sl_n = evaluate_word_similarity(E, w2i, simlex)
    return dict(wordsim=ws, wordsim_cov=ws_cov, wordsim_n=ws_n, simlex=sl, simlex_cov=sl_cov, simlex_n=sl_n)


def run_ours(c, epochs, seed, threads, device, evalsets):
    if device == "cuda":
        torch.cuda.synchronize()
    cpu0 = time.process_time()
    run = train_skipgram(c.ids, c.V, c.counts, SkipGramConfig(**HP, epochs=epochs, seed=seed),
                         device=device, num_threads=threads)
    cpu = time.process_time() - cpu0
    stats = run.stats
    assert stats.device.startswith(device), stats.device
    return dict(model="ours (PyTorch)", device=stats.device, threads=threads, seed=seed,
                seconds=stats.seconds, cpu=cpu, wps=epochs * len(c.tokens) / stats.seconds,
                **quality(run.embeddings, c.word_to_id, *evalsets))


def run_gensim(c, epochs, seed, workers, evalsets):
    from gensim.models import Word2Vec

    gs = Word2Vec(vector_size=HP["dim"], window=HP["window"], negative=HP["negatives"], sg=1, hs=0,
                  min_count=MIN_COUNT, sample=HP["sample"], alpha=HP["lr"], min_alpha=HP["min_lr"],
                  epochs=epochs, workers=workers, seed=seed, hashfxn=_crc32)
    gs.build_vocab(c.sentences)
    # the same vocabulary as ours (the book's assertion), with the same counts
    assert set(gs.wv.key_to_index) == set(c.words), "gensim's vocabulary differs from ours"
    assert all(gs.wv.get_vecattr(w, "count") == c.counts[i] for i, w in enumerate(c.words)), \
        "gensim's word counts differ from ours"
    cpu0, t0 = time.process_time(), time.perf_counter()
    _, raw = gs.train(c.sentences, total_examples=len(c.sentences), epochs=epochs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert raw == epochs * len(c.tokens), f"gensim counted {raw} raw words, expected {epochs * len(c.tokens)}"
    return dict(model="gensim", device="cpu", threads=workers, seed=seed, seconds=seconds, cpu=cpu,
                wps=epochs * len(c.tokens) / seconds,
                **quality(gs.wv.vectors.astype(np.float64), gs.wv.key_to_index, *evalsets))


def mean_sd(xs):
    m = statistics.mean(xs)
    return f"{m:.3f}" + (f" +- {statistics.stdev(xs):.3f}" if len(xs) > 1 else "")


def print_runs(runs):
    print(f"{'model':<16} {'device':<7} {'threads':>7} {'seed':>5} {'train s':>8} {'CPU s':>7} "
          f"{'words/s':>10} {'WordSim':>8} {'SimLex':>7}")
    print("-" * 83)
    for r in runs:
        print(f"{r['model']:<16} {r['device']:<7} {r['threads'] or '-':>7} {r['seed']:>5} {r['seconds']:8.1f} "
              f"{r['cpu']:7.1f} {r['wps']:10,.0f} {r['wordsim']:8.3f} {r['simlex']:7.3f}")


def cpu_section(c, args, evalsets):
    print(f"CPU: threads {' and '.join(map(str, args.threads))}; {args.seeds} run(s) per model and thread "
          f"count, ours and gensim alternating")
    runs, seed = [], args.seed
    for _ in range(args.seeds):
        for T in args.threads:
            runs.append(run_ours(c, args.epochs, seed, T, "cpu", evalsets))
            runs.append(run_gensim(c, args.epochs, seed, T, evalsets))
            seed += 1
    print()
    print_runs(runs)

    ours = [r for r in runs if r["model"] != "gensim"]
    gens = [r for r in runs if r["model"] == "gensim"]
    print()
    print(f"speed (median words/s over {args.seeds} run(s); target ours/gensim >= {TARGET_SPEED})")
    print(f"{'threads':>7} {'ours words/s':>13} {'gensim words/s':>15} {'ours/gensim':>12}  target")
    print("-" * 58)
    speed = {}
    for T in args.threads:
        o = statistics.median(r["wps"] for r in ours if r["threads"] == T)
        g = statistics.median(r["wps"] for r in gens if r["threads"] == T)
        speed[T] = o / g
        print(f"{T:>7} {o:13,.0f} {g:15,.0f} {o / g:12.2f}  {'met' if o / g >= TARGET_SPEED else 'NOT met'}")

    print()
    print(f"quality (mean +- sd over {len(ours)} run(s) per model, final embeddings)")
    print(f"{'benchmark':<22} {'coverage':>13} {'ours':>15} {'gensim':>15} {'ours/gensim':>12}")
    print("-" * 81)
    qual = {}
    for key, label in [("wordsim", "WordSim-353 Spearman"), ("simlex", "SimLex-999 Spearman")]:
        o, g = statistics.mean(r[key] for r in ours), statistics.mean(r[key] for r in gens)
        qual[key] = o / g
        n, cov = ours[0][key + "_n"], ours[0][key + "_cov"]
        print(f"{label:<22} {f'{n} ({cov:.0%})':>13} {mean_sd([r[key] for r in ours]):>15} "
              f"{mean_sd([r[key] for r in gens]):>15} {o / g:12.2f}")
    return ours, gens, speed, qual


def gpu_section(c, args, evalsets, cpu_ours, cpu_gensim, device="cuda"):
    """Our trainer on `device` (CUDA), beside the CPU figures; no gensim (it has no GPU code)."""
    name = torch.cuda.get_device_name() if device == "cuda" else device
    print(f"GPU: ours with device={device!r} ({name}), {args.seeds} run(s) after one untimed warm-up "
          f"epoch on the first 100,000 tokens")
    train_skipgram(c.ids[:100_000], c.V, c.counts, SkipGramConfig(**HP, epochs=1, seed=args.seed), device=device)
    runs = [run_ours(c, args.epochs, args.seed + i, None, device, evalsets) for i in range(args.seeds)]
    print()
    print_runs(runs)
    wps = statistics.median(r["wps"] for r in runs)
    best_ours = max(statistics.median(r["wps"] for r in cpu_ours if r["threads"] == T) for T in args.threads)
    best_gensim = max(statistics.median(r["wps"] for r in cpu_gensim if r["threads"] == T) for T in args.threads)
    print()
    print(f"ours on {device}: {wps:,.0f} words/s (median), {wps / best_ours:.2f} x ours on the CPU "
          f"({best_ours:,.0f}, best thread count), {wps / best_gensim:.2f} x gensim on the CPU "
          f"({best_gensim:,.0f}, best thread count); WordSim-353 {mean_sd([r['wordsim'] for r in runs])}")


def main(argv=None):
    args = parse_args(argv)
    import gensim
    import scipy

    wall0 = time.perf_counter()
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"gensim {gensim.__version__}, scipy {scipy.__version__}")
    print(f"{platform.platform()}, {platform.processor() or platform.machine()}, "
          f"os.cpu_count()={os.cpu_count()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    load = os.getloadavg()
    print(f"load average {' '.join(f'{x:.2f}' for x in load)} before the run"
          + ("" if load[0] < 0.5 else "; the machine is not idle, so the timings include the competition "
             "for its cores (multithreaded runs suffer most)"))

    c = load_corpus()
    evalsets = (data.wordsim353(), data.simlex999())
    print(f"corpus: Shakespeare, all {len(corpora.shakespeare_plays())} plays: {len(c.tokens):,} tokens, "
          f"vocabulary {c.V:,} words (min_count {MIN_COUNT}), {len(c.ids):,} tokens in the vocabulary, "
          f"{len(c.sentences)} gensim sentences of <= {SENTENCE:,} tokens")
    print(f"shared hyperparameters: dim {HP['dim']}, window {HP['window']}, negatives {HP['negatives']}, "
          f"min_count {MIN_COUNT}, sample {HP['sample']:g}, epochs {args.epochs}, lr {HP['lr']} -> {HP['min_lr']:g} "
          f"(linear); gensim sg=1, hs=0")
    print(f"words/s = {len(c.tokens):,} corpus tokens x {args.epochs} epochs / training seconds, for both")
    print()

    ours, gens, speed, qual = cpu_section(c, args, evalsets)
    print()
    if torch.cuda.is_available():
        gpu_section(c, args, evalsets, ours, gens)
    else:
        why = ("this torch build has no CUDA support (torch.version.cuda is None)"
               if torch.version.cuda is None else "no CUDA device is visible")
        print(f"GPU section skipped: torch.cuda.is_available() is False; {why}.")

    print()
    q = qual["wordsim"]
    print(f"target quality: WordSim-353 ours/gensim = {q:.2f} (target >= {TARGET_QUALITY}: "
          f"{'met' if q >= TARGET_QUALITY else 'NOT met'})")
    for T, s in speed.items():
        print(f"target speed:   words/s ours/gensim at {T} thread(s) = {s:.2f} (target >= {TARGET_SPEED}: "
              f"{'met' if s >= TARGET_SPEED else 'NOT met'})")
    print(f"SimLex-999 ours/gensim = {qual['simlex']:.2f} (for information, no target)")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; total wall time "
          f"{time.perf_counter() - wall0:.0f} s")


if __name__ == "__main__":
    main()
