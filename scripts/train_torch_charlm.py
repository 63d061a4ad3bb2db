#!/usr/bin/python3
"""`charlm train` in PyTorch: the same model, data pipeline, flags and output,
the reference that tapegrad's learning is compared with
(scripts/compare_learning.sh).

    /usr/bin/python3 scripts/train_torch_charlm.py --cell lstm --layers 2 \\
        --hidden 128 --embed 64 --seq 64 --batch 32 --steps 500 --lr 2e-3

Model and data: scripts/charlm_model.py (Embedding -> nn.LSTM/GRU/RNN ->
Dropout -> Linear, charlm's state_dict names; the corpus, vocabulary,
held-out split and streams of charlm). Training, step for step as charlm:

    if pos + T + 1 > n: pos = 0, state = zeros     (streams wrap round)
    x = rows [pos, pos + T), y = rows [pos + 1, pos + 1 + T); pos += T
    logits, state = model(x, detach(state))        (truncated BPTT)
    mean cross-entropy; backward; clip the global norm (--clip <= 0: no
    clipping, the norm still logged); SGD / Adam / AdamW(weight decay 0.01)

Every --eval-every steps and at the end, as charlm train: one readable line
on stdout (losses, bits/char, tokens/s, ETA), and one JSON line appended to
--log FILE (--log -: the JSON on stdout, the readable line on stderr), the
keys and number format of charlm's, with "impl": "torch":
    {"impl": "torch", "step": 100, "train_loss": ..., "val_loss": ...,
     "tokens_per_s": ..., "elapsed_s": ..., "lr": ..., "grad_norm": ...}
train_loss averages the steps since the last evaluation.

Flags are charlm train's, with its defaults, except:
  --save FILE     the weights alone (as `charlm export` writes them, which
                  `charlm train --init-from FILE` starts from); default: none
  --resume        not available (the optimizer's state is not saved)
  --blocks        accepted and ignored (in charlm it only orders a sum)
  --reduce        accepted and ignored (likewise)
  --threads N     N BLAS threads and one PyTorch thread, PyTorch's fastest
                  setting here (its own pool beside OpenBLAS's oversubscribes
                  the cores); --torch-threads K changes the latter
Initialisation is PyTorch's, from --seed: the same flags give charlm and
PyTorch different starting weights, unless both start from one file
(--init-from).

Speed: Debian's OpenBLAS may pick slow kernels by itself; to give PyTorch
its best on a CPU with AVX-512 run this script under
`env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX` (OPENBLAS_VERBOSE=2
shows the kernels chosen).
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/games/fortunes")
    ap.add_argument("--cell", default="lstm",
                    choices=["lstm", "gru", "rnn", "rnn_tanh", "rnn_relu"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=0)
    ap.add_argument("--reduce", default="tree")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--minutes", type=float, default=0.0)
    ap.add_argument("--optim", default="adam", choices=["adam", "adamw", "sgd"])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-threads", type=int, default=1)
    ap.add_argument("--max-data-mb", type=int, default=1024)
    ap.add_argument("--val-frac", type=float, default=0.05)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--save", default=None)
    ap.add_argument("--resume", default=None)
    ap.add_argument("--init-from", default=None)
    ap.add_argument("--log", default=None)
    ap.add_argument("--overwrite", action="store_true")
    a = ap.parse_args(argv)
    if a.resume:
        ap.error("--resume: the PyTorch reference does not save its optimizer; "
                 "start from the weights with --init-from instead")
    for name in ("layers", "hidden", "embed", "seq", "batch", "threads",
                 "torch_threads", "eval_every", "max_data_mb"):
        if getattr(a, name) < 1:
            ap.error("--%s must be >= 1" % name.replace("_", "-"))
    if not (0 <= a.dropout < 1) or not (0 <= a.val_frac < 1) or a.lr < 0:
        ap.error("--dropout and --val-frac must be in [0, 1), --lr >= 0")
    if a.steps is None:  # as charlm: --minutes alone sets no step limit
        a.steps = 10**12 if a.minutes > 0 else 500
    if a.save and os.path.exists(a.save) and not a.overwrite:
        ap.error("--save %s already exists: choose another (or pass --overwrite)" % a.save)
    return a


def main(argv=None):
    a = parse_args(argv)
    # OpenBLAS reads its thread count when torch loads it
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    os.environ["OMP_NUM_THREADS"] = str(a.torch_threads)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch
    from charlm_model import CharLM, detach, encode, evaluate, read_corpus, split, vocabulary
    from safetensors_torch import load_file, save_file

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.torch_threads)
    size = (sum(os.path.getsize(os.path.join(a.data, n)) for n in os.listdir(a.data))
            if os.path.isdir(a.data) else os.path.getsize(a.data))
    if size > a.max_data_mb << 20:
        sys.exit("train_torch_charlm: %s is larger than the --max-data-mb limit of "
                 "%d MiB" % (a.data, a.max_data_mb))
    text = read_corpus(a.data)
    vocab = vocabulary(text)
    V, T, B = len(vocab), a.seq, a.batch
    if len(text) < 2 * (T * B + 1):
        sys.exit("train_torch_charlm: %s is too small for --seq %d --batch %d"
                 % (a.data, T, B))
    train, val = split(encode(text, vocab), T, B, a.val_frac)
    print("corpus %s: %d characters, vocabulary %d" % (a.data, len(text), V),
          file=sys.stderr)

    model = CharLM(a.cell, V, a.embed, a.hidden, a.layers, a.dropout)
    if a.init_from:
        model.load_state_dict(load_file(a.init_from), strict=True)
    if a.optim == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr)
    elif a.optim == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)

    meta = {"format": "pt", "cell": a.cell, "layers": str(a.layers),
            "hidden": str(a.hidden), "embed": str(a.embed),
            "dropout": repr(a.dropout), "vocab": "".join(vocab)}
    # as charlm train: a readable line per evaluation on stdout, JSON lines
    # appended to --log FILE; --log - puts the JSON on stdout instead
    # (the readable lines then go to stderr)
    to_stdout = a.log == "-"
    log = open(a.log, "a") if a.log and not to_stdout else None
    state, pos, t0, tokens, losses, gn = None, 0, time.time(), 0, [], 0.0
    clip = a.clip if a.clip > 0 else math.inf
    step = 0
    while step < a.steps and not (a.minutes > 0 and time.time() - t0 >= 60 * a.minutes):
        step += 1
        if pos + T + 1 > train.size(0):
            pos, state = 0, None
        x, y = train[pos:pos + T], train[pos + 1:pos + 1 + T]
        pos += T
        logits, state = model(x, detach(state))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        opt.step()
        tokens += x.numel()
        losses.append(loss.item())
        if not math.isfinite(losses[-1]):
            sys.exit("train_torch_charlm: step %d: the training loss is %s"
                     % (step, losses[-1]))
        last = step >= a.steps or (a.minutes > 0 and time.time() - t0 >= 60 * a.minutes)
        if step % a.eval_every == 0 or last:
            elapsed = time.time() - t0
            rec = {"impl": "torch", "step": step,
                   "train_loss": sum(losses) / len(losses),
                   "val_loss": evaluate(model, val, T),
                   "tokens_per_s": tokens / elapsed, "elapsed_s": elapsed,
                   "lr": a.lr, "grad_norm": gn}
            if step % a.eval_every == 0:
                losses = []
            line = json.dumps(rec)
            eta = (elapsed / step * (a.steps - step)) if a.minutes <= 0 else \
                max(0.0, 60 * a.minutes - elapsed)
            text = ("step %d/%d  train %.4f  val %.4f nats = %.4f bits/char  "
                    "%.0f tok/s  %.0fs elapsed  ETA %.0fs%s"
                    % (step, a.steps, rec["train_loss"], rec["val_loss"],
                       rec["val_loss"] / math.log(2), rec["tokens_per_s"],
                       elapsed, eta, "  saved " + a.save if a.save else ""))
            if to_stdout:
                print(line, flush=True)
                print(text, file=sys.stderr, flush=True)
            else:
                print(text, flush=True)
            if log:
                log.write(line + "\n")
                log.flush()
            if a.save:
                save_file(model.state_dict(), a.save, meta)
    print("done: step %d%s" % (step, "; saved " + a.save if a.save else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
