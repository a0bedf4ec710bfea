"""Train chapter 12's full-length word-level LSTMs and write the record the chapter reads.

A 2-layer LSTM on Shakespeare at word level (10,000 words, PTB's preparation: see
``autograder.lab.word_lm``) needs tens of passes over its 930,000 training words; that is
minutes on a GPU and hours on the two cores a book build has. So this script is run once, on a
GPU, and writes to ``--out`` (default ``book/data``):

- ``word_lm_runs.json``: for every configuration, after every epoch, the perplexity per word
  on the validation plays and on a fixed slice of the training stream (in eval mode), with the
  configuration, the seconds per epoch and the device;
- ``word_lm.pt``: the weights (``word_lm.save``, float16) of the configuration with the lowest
  validation perplexity, taken at its best epoch (early stopping).

Chapter 12 loads ``word_lm.pt``, scores it on the validation and test plays at build time and
asserts that its validation perplexity is the one recorded, so the record and the weights
cannot drift apart. A few hundred training words, one small configuration and two epochs on a CPU are the smoke
test (tests/test_lab_word_lm.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.lab import char_lm, word_lm  # noqa: E402

# name -> (tie, dropout); the embedding and hidden sizes are shared (tying needs them equal)
CONFIGS = {"tied-0.0": (True, 0.0), "tied-0.5": (True, 0.5), "untied-0.5": (False, 0.5),
           "tied-0.3": (True, 0.3)}
VALID, TEST = ["twelfth-night", "the-tempest"], ["hamlet", "macbeth"]
TRAIN_SLICE = 50_000  # training words scored each epoch, to draw the training curve


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "book" / "data", help="folder for the record and the weights")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--epochs", type=int, default=12, help="passes over the training stream")
    p.add_argument("--size", type=int, default=200, help="embedding and hidden size")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=35, help="truncated BPTT length")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate")
    p.add_argument("--clip", type=float, default=0.25, help="global gradient-norm clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-words", type=int, default=None,
                   help="train on the first N words of the training stream only (a smoke test)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    for name in ("epochs", "size", "batch_size", "seq_len", "train_words"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    return args


def score(model, ids):
    """Perplexity per word of ``ids`` (16 streams of 128-word chunks; one stream if ids are few)."""
    B, S = (16, 128) if len(ids) > 16 * 128 else (1, len(ids) - 1)
    return word_lm.evaluate(model, ids, B, S)["perplexity"]


def run(name, corpus, args):
    """Train one configuration; returns (its record, the state dict of its best epoch)."""
    tie, dropout = CONFIGS[name]
    torch.manual_seed(args.seed)
    model = word_lm.WordLM(len(corpus.words), args.size, args.size, 2, dropout, tie).to(args.device)
    K = (len(corpus.train) - 1) // (args.batch_size * args.seq_len)      # updates per epoch
    rec = {"name": name, "tie": tie, "dropout": dropout, "parameters": word_lm.parameter_count(model),
           "epoch": [], "valid": [], "train": [], "seconds": []}
    best = {"valid": float("inf")}
    clock = [time.perf_counter()]

    def on_epoch(step, model):
        if args.device == "cuda":
            torch.cuda.synchronize()
        rec["seconds"].append(time.perf_counter() - clock[0])
        rec["epoch"].append(step // K)
        rec["valid"].append(score(model, corpus.valid))
        rec["train"].append(score(model, corpus.train[:TRAIN_SLICE]))
        if rec["valid"][-1] < best["valid"]:
            best.update(valid=rec["valid"][-1], epoch=rec["epoch"][-1],
                        state={k: t.detach().clone() for k, t in model.state_dict().items()})
        print(f"{name} epoch {rec['epoch'][-1]}: valid {rec['valid'][-1]:.1f}, "
              f"train {rec['train'][-1]:.1f}, {rec['seconds'][-1]:.1f} s", flush=True)
        model.train()
        clock[0] = time.perf_counter()

    char_lm.train(model, corpus.train, args.epochs * K, batch_size=args.batch_size, seq_len=args.seq_len,
                  lr=args.lr, clip_norm=args.clip, callback=on_epoch,
                  callback_at=range(K, args.epochs * K + 1, K))
    rec["best_epoch"], rec["best_valid"] = best["epoch"], best["valid"]
    model.load_state_dict(best["state"])
    return rec, model


def main(argv=None):
    args = parse(argv)
    corpus = word_lm.shakespeare_words(VALID, TEST)
    if args.train_words is not None:
        corpus.train = corpus.train[:args.train_words]
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    runs, best = [], None
    for name in args.configs:
        rec, model = run(name, corpus, args)
        runs.append(rec)
        if best is None or rec["best_valid"] < best[0]["best_valid"]:
            best = (rec, model)
            word_lm.save(model, args.out / "word_lm.pt")
        # written after every configuration, so a run cut short keeps what it finished
        record = {"device": device, "torch": torch.__version__, "valid_plays": VALID, "test_plays": TEST,
                  "vocab_size": len(corpus.words), "size": args.size, "batch_size": args.batch_size,
                  "seq_len": args.seq_len, "lr": args.lr, "clip": args.clip, "seed": args.seed,
                  "epochs": args.epochs, "train_words": len(corpus.train), "train_slice": TRAIN_SLICE,
                  "saved": best[0]["name"], "runs": runs}
        (args.out / "word_lm_runs.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"saved {best[0]['name']} (epoch {best[0]['best_epoch']}, valid {best[0]['best_valid']:.1f}) "
          f"to {args.out}")

if __name__ == "__main__":
    main()
