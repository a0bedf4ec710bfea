"""Why the grader and the book's build share the cores out: processes side by side, each with
a numeric-library thread per core against one thread each, in one run.

Starts --processes copies (default: the cores plus one, as when two grading kernels run
beside the book's two chapters) of the same work at once: a NumPy RNN-like loop of small
matrix products (OpenBLAS) and a few steps of a small PyTorch LSTM (OpenMP). First with the
libraries' default of a thread per core, then with ``kernel.thread_env(1)``, the setting
``autograder grade`` and ``scripts/execute_book.py`` give each process when they run one
per core. Prints each setting's slowest process and the ratio, and the same work alone
with both settings (what one thread costs a process that has the machine to itself).

    python benchmarks/oversubscription.py [--processes N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from autograder.grading.kernel import THREAD_VARIABLES, thread_env

WORK = """
import time
import numpy as np
import torch
rng = np.random.default_rng(0)
W, x = rng.standard_normal((128, 128)), rng.standard_normal((64, 128))
start = time.perf_counter()
for _ in range(20000):
    x = np.tanh(x @ W * 0.05)
lstm, xb = torch.nn.LSTM(64, 128, batch_first=True), torch.randn(32, 100, 64)
for _ in range(15):
    lstm(xb)[0].sum().backward()
print(time.perf_counter() - start)
"""


def run(processes, threads):
    """Seconds of the slowest of ``processes`` copies of WORK started at once."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(thread_env(threads) if threads else {})
    procs = [subprocess.Popen([sys.executable, "-c", WORK], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(processes)]
    return max(float(p.communicate()[0]) for p in procs)


def main(argv=None):
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--processes", type=int, default=cores + 1)
    args = p.parse_args(argv)
    if args.processes < 1:
        p.error(f"--processes must be a positive integer, got {args.processes}")
    start = time.perf_counter()
    alone_default, alone_one = run(1, None), run(1, 1)
    side_default, side_one = run(args.processes, None), run(args.processes, 1)
    print(f"{cores} cores; {args.processes} processes side by side")
    print(f"  alone:        a thread per core {alone_default:6.2f} s   one thread {alone_one:6.2f} s"
          f"   ratio {alone_default / alone_one:5.2f}")
    print(f"  side by side: a thread per core {side_default:6.2f} s   one thread {side_one:6.2f} s"
          f"   ratio {side_default / side_one:5.2f}  (the slowest process)")
    print(f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
