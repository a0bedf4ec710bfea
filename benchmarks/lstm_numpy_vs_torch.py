"""LSTM forward + backward: the NumPy reference against PyTorch, side by side.

CPU section (always): autograder.reference.lstm_forward + lstm_backward (float64, random dh)
against torch nn.LSTM forward + out.backward(dh) on CPU, in float64 and float32, at
N=64, T=50, D=H=128. Both sides compute the same gradients: inputs, initial hidden state,
weights and bias. The weights are the same (lstm_module_from_weights) and the float64
outputs and gradients are checked to match once before timing.

GPU section (only when torch.cuda.is_available()): lstm_forward_torch (one hand-written
LSTMCellFunction per time step) against cuDNN nn.LSTM, forward + backward, N=256, T=100,
D=H=512, float32 on CUDA, with torch.cuda.synchronize() around every timing.

Each timing is the median of --repeats runs after --warmup runs.

    python benchmarks/lstm_numpy_vs_torch.py [--repeats 7] [--warmup 2] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

TARGET_RATIO = 1.3  # numpy / torch (float64) on CPU


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7, help="timed runs per row, median reported (>= 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="threads for NumPy's BLAS and for torch (default os.cpu_count())")
    args = p.parse_args()
    if args.repeats < 5:
        p.error("--repeats: at least 5")
    if args.warmup < 1:
        p.error("--warmup: at least 1")
    if args.threads < 1:
        p.error("--threads: at least 1")
    return args


ARGS = parse_args()
# NumPy's BLAS reads its thread count when it is loaded, so this must precede importing numpy.
# (threadpoolctl would let us read/set it afterwards; it is not a dependency of this project.)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from autograder.reference import (lstm_backward, lstm_forward, lstm_forward_torch,  # noqa: E402
                                  lstm_module_from_weights)


def blas_threads_note():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return (f"{ARGS.threads} (assumed: os.cpu_count()={os.cpu_count()}, exported as "
                f"OPENBLAS/OMP/MKL_NUM_THREADS before importing numpy; threadpoolctl not installed)")
    blas = [f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info() if i.get("user_api") == "blas"]
    return f"{ARGS.threads} requested; threadpoolctl reports {', '.join(blas) or 'no BLAS'}"


def timeit(fn, repeats, warmup, sync=None):
    """Median and min wall time in seconds of fn() over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def random_problem(N, T, D, H, seed=0):
    rng = np.random.default_rng(seed)
    s = 1.0 / np.sqrt(H)
    return dict(
        x=rng.standard_normal((N, T, D)),
        h0=rng.standard_normal((N, H)) * 0.1,
        Wx=rng.uniform(-s, s, (D, 4 * H)),
        Wh=rng.uniform(-s, s, (H, 4 * H)),
        b=rng.uniform(-s, s, 4 * H),
        dh=rng.standard_normal((N, T, H)),
    )


def torch_lstm_runner(P, dtype, device="cpu"):
    """nn.LSTM with the reference weights; returns (run, state) where run() does fwd + bwd."""
    m = lstm_module_from_weights(P["Wx"], P["Wh"], P["b"], device=device, dtype=dtype)
    x = torch.tensor(P["x"], dtype=dtype, device=device, requires_grad=True)
    h0 = torch.tensor(P["h0"][None], dtype=dtype, device=device, requires_grad=True)
    c0 = torch.zeros_like(h0)
    dh = torch.tensor(P["dh"], dtype=dtype, device=device)
    state = {"m": m, "x": x, "h0": h0}

    def run():
        m.zero_grad(set_to_none=True)
        x.grad = h0.grad = None
        out, _ = m(x, (h0, c0))
        out.backward(dh)
        state["out"] = out
    return run, state


def max_rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def check_cpu_match(P):
    """Assert once that the NumPy reference and nn.LSTM agree (outputs and every gradient)."""
    h, cache = lstm_forward(P["x"], P["h0"], P["Wx"], P["Wh"], P["b"])
    dx, dh0, dWx, dWh, db = lstm_backward(P["dh"], cache)
    run, st = torch_lstm_runner(P, torch.float64)
    run()
    m = st["m"]
    pairs = {
        "h": (h, st["out"].detach().numpy()),
        "dx": (dx, st["x"].grad.numpy()),
        "dh0": (dh0, st["h0"].grad[0].numpy()),
        "dWx": (dWx, m.weight_ih_l0.grad.T.numpy()),
        "dWh": (dWh, m.weight_hh_l0.grad.T.numpy()),
        "db (bias_ih)": (db, m.bias_ih_l0.grad.numpy()),
        "db (bias_hh)": (db, m.bias_hh_l0.grad.numpy()),
    }
    errs = {k: max_rel(a, b) for k, (a, b) in pairs.items()}
    bad = {k: e for k, e in errs.items() if not e < 1e-7}
    assert not bad, f"NumPy reference and nn.LSTM disagree (max relative error): {bad}"
    run32, st32 = torch_lstm_runner(P, torch.float32)
    run32()
    err32 = float(np.max(np.abs(st32["out"].detach().double().numpy() - h)))
    assert err32 < 1e-4, f"float32 nn.LSTM output differs from the reference by {err32}"
    return max(errs.values()), err32


def cpu_section():
    N, T, D, H = 64, 50, 128, 128
    P = random_problem(N, T, D, H)
    torch.set_num_threads(ARGS.threads)
    print(f"CPU: N={N} T={T} D={D} H={H}; forward + backward (dx, dh0, dWx, dWh, db), "
          f"median of {ARGS.repeats} after {ARGS.warmup} warm-up")
    print(f"threads: torch.set_num_threads({ARGS.threads}) -> torch.get_num_threads()={torch.get_num_threads()}; "
          f"NumPy BLAS: {blas_threads_note()}")
    err64, err32 = check_cpu_match(P)
    print(f"check: NumPy vs nn.LSTM float64, max rel error over h and all gradients {err64:.1e}; "
          f"float32 output max abs error {err32:.1e}  (OK)")

    def numpy_run():
        h, cache = lstm_forward(P["x"], P["h0"], P["Wx"], P["Wh"], P["b"])
        lstm_backward(P["dh"], cache)

    rows = [("numpy reference", "float64", *timeit(numpy_run, ARGS.repeats, ARGS.warmup))]
    for dt in (torch.float64, torch.float32):
        run, _ = torch_lstm_runner(P, dt)
        rows.append(("torch nn.LSTM (CPU)", str(dt).replace("torch.", ""), *timeit(run, ARGS.repeats, ARGS.warmup)))

    np_med = rows[0][2]
    print()
    print(f"{'implementation':<22} {'dtype':<8} {'median ms':>10} {'min ms':>9} {'numpy/this':>11}")
    print("-" * 64)
    for name, dt, med, mn in rows:
        print(f"{name:<22} {dt:<8} {med * 1e3:10.2f} {mn * 1e3:9.2f} {np_med / med:11.2f}")
    ratio64 = np_med / rows[1][2]
    ratio32 = np_med / rows[2][2]
    met = "met" if ratio64 <= TARGET_RATIO else "NOT met"
    print()
    print(f"ratio numpy/torch float64 = {ratio64:.2f}  (target <= {TARGET_RATIO}: {met})")
    print(f"ratio numpy/torch float32 = {ratio32:.2f}  (for reference; numpy runs float64)")
    return ratio64


def gpu_section(device="cuda", N=256, T=100, D=512, H=512, repeats=None, warmup=None):
    """LSTMCellFunction over time vs cuDNN nn.LSTM, float32, forward + backward."""
    repeats = repeats or ARGS.repeats
    warmup = warmup or ARGS.warmup
    dtype = torch.float32
    P = random_problem(N, T, D, H, seed=1)
    sync = torch.cuda.synchronize if device == "cuda" else None
    t = {k: torch.tensor(P[k], dtype=dtype, device=device, requires_grad=k != "dh")
         for k in ("x", "h0", "Wx", "Wh", "b", "dh")}

    def cell_run():
        for k in ("x", "h0", "Wx", "Wh", "b"):
            t[k].grad = None
        out = lstm_forward_torch(t["x"], t["h0"], t["Wx"], t["Wh"], t["b"])
        out.backward(t["dh"])
        return out

    cudnn_run, st = torch_lstm_runner(P, dtype, device=device)
    # one-off agreement check (cuDNN may use TF32 internally, hence the loose bound)
    out_cell = cell_run().detach()
    cudnn_run()
    err = float((out_cell - st["out"].detach()).abs().max())
    gerr = float((t["Wh"].grad - st["m"].weight_hh_l0.grad.T).abs().max()
                 / st["m"].weight_hh_l0.grad.abs().max())
    assert err < 1e-2 and gerr < 1e-2, f"LSTMCellFunction vs nn.LSTM: max |dh| {err}, rel dWh {gerr}"

    cell = timeit(cell_run, repeats, warmup, sync)
    cudnn = timeit(cudnn_run, repeats, warmup, sync)
    label = "cuDNN nn.LSTM" if device == "cuda" else f"nn.LSTM ({device})"
    print(f"{device.upper()}: N={N} T={T} D={D} H={H} float32, forward + backward, "
          f"median of {repeats} after {warmup} warm-up ({torch.cuda.get_device_name() if device == 'cuda' else device})")
    print(f"check: LSTMCellFunction vs {label}, max |h| diff {err:.1e}, rel dWh diff {gerr:.1e}  (OK)")
    print()
    print(f"{'implementation':<38} {'median ms':>10} {'min ms':>9}")
    print("-" * 59)
    print(f"{'lstm_forward_torch (LSTMCellFunction)':<38} {cell[0] * 1e3:10.2f} {cell[1] * 1e3:9.2f}")
    print(f"{label:<38} {cudnn[0] * 1e3:10.2f} {cudnn[1] * 1e3:9.2f}")
    print()
    print(f"ratio LSTMCellFunction/{label} = {cell[0] / cudnn[0]:.2f}")
    return cell[0] / cudnn[0]


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}")
    print()
    cpu_section()
    print()
    if torch.cuda.is_available():
        gpu_section()
    else:
        why = ("this torch build has no CUDA support (torch.version.cuda is None)"
               if torch.version.cuda is None else "no CUDA device is visible")
        print(f"GPU section skipped: torch.cuda.is_available() is False; {why}.")


if __name__ == "__main__":
    main()
