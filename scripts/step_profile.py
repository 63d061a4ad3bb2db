#!/usr/bin/env python3
"""Where one training (or forward) step of build/bench spends its time,
against where its FLOPs are: samples the step with perf (call stacks by
DWARF unwinding), sorts every sample into a part of the step by its call
stack, and prints a Markdown table - each part's share of the step's
time, its share of the step's matmul FLOPs, and the rate that implies, in
GFLOP/s and as a fraction of the machine's FMA peak (build/bench's own
figure, measured in the same run).

  scripts/step_profile.py [--bench build/bench] [--size medium] [--cell lstm]
                          [--mode train|forward] [--opt adam|sgd]
                          [--steps N] [--freq HZ] [--keep DIR]

The matmul parts follow the calls that make them (ops/matmul.c):
  recurrent forward      h W_hh^T, one product per step (the compiled step
                         or the cell as written)
  input projection       x W_ih^T, one product over all T (nn/rnn.c)
  decoder forward        h W_out^T over all T (the charlm's output layer)
  recurrent dx           dh += dg W_hh, per step, W_hh packed once
  dx, projections        dx += dy W for the input projections and the
                         decoder, over all T
  dW, all                dW += dy^T x: per step for W_hh at a
                         batch of more than 64 rows, else deferred and
                         summed in a few products, each with the copies
                         that gather its terms (tg_prepare_weight); over
                         all T for the others
Packing of A and B inside a product counts as the product's time. The
rest - the compiled cell's elementwise code (ops/fuse), bias adds and
bias gradients, zeroed gradient buffers, copies, the optimiser, the
cross-entropy, the embedding, the kernel - has no matmul FLOPs.

Needs perf (Debian linux-perf) and a build with symbols (the default
flags have -g), of this source tree: the weight gradient's call sites are
told from the dx ones by reading the lines addr2line names, so an older
binary beside newer sources is misread. The time shares are perf's samples; the step time is
build/bench's median under perf (sampling with stacks costs a few
percent), so read the rates as approximate and the shares as the point.
Run it alone on the machine: a busy core shifts time between parts.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_compare import SIZES  # noqa: E402

# a frame of the gemm (its entry points may be tail calls, absent from
# the stack: the kernel's own frames are enough)
GEMM = ("tg_gemm", "tg_k_gemm", "gemm_run", "run_task", "run_tile",
        "tile_blocked", "tile_dot")
# non-matmul parts: (name, frames any of which puts a sample there), tried
# in order on the whole stack
OTHER = [
    ("compiled cell, backward (VM)", ("fused_bwd", "tile_backward")),
    ("compiled cell, forward (VM)", ("tg_fuse_group_run", "group_forward")),
    ("bias gradients (column sums)", ("colsum_add",)),
    ("bias add in linear forward", ("bias_row", "bias_row_add")),
    ("zeroing gradient buffers", ("ensure_grad", "tg_params_zero_grad")),
    ("optimiser", ("tg_optim_step",)),
    ("cross-entropy", ("tg_cross_entropy", "ce_backward")),
    ("embedding", ("embedding_backward", "tg_embedding")),
    ("copies (views, joins, strided)", ("tg_strided_copy", "join", "join_bwd",
                                        "view_bwd", "copy_rec")),
    ("cell as written (elementwise ops)", ("cell_step",)),
]
ROLES = ["recurrent forward", "input projection", "decoder forward",
         "recurrent dx", "dx, projections", "dW, all"]


def read_stacks(path):
    """perf script -F ip,sym output: a list of stacks, leaf first, each a
    list of (ip, symbol) with " (inlined)" dropped from the symbol."""
    stacks, cur = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                if cur:
                    stacks.append(cur)
                cur = []
                continue
            ip, _, sym = line.partition(" ")
            cur.append((ip, sym.replace(" (inlined)", "")))
    if cur:
        stacks.append(cur)
    return stacks


class Sites:
    """Which gradient a tg_gemm call in linear_grads computes, from its
    source: the call's arguments name x->grad (dx) or W->grad (dW)."""

    def __init__(self, binary):
        self.binary, self.known = binary, {}

    def kind(self, ip):
        if ip not in self.known:
            out = subprocess.run(["addr2line", "-e", self.binary, "0x" + ip],
                                 capture_output=True, text=True).stdout
            m = re.match(r"(.*):(\d+)", out.strip())
            text = ""
            if m and os.path.exists(m.group(1)):
                with open(m.group(1)) as f:
                    lines = f.read().splitlines()
                i = int(m.group(2)) - 1
                while 0 <= i < len(lines):
                    text += lines[i]
                    if ";" in lines[i]:
                        break
                    i += 1
            self.known[ip] = ("dW" if "W->grad" in text else
                              "dx, prepacked" if "prepacked" in text else
                              "dx" if "x->grad" in text else "?")
        return self.known[ip]


def gemm_role(stack, sites):
    """The matmul part of a stack with a gemm in it, or None."""
    syms = [s for _, s in stack]
    if "flush_parts" in syms or "prepare_bwd" in syms:
        return "dW, all"  # the deferred terms: copied together, one product
    idx = [i for i, (_, s) in enumerate(stack) if s.startswith(GEMM)
           or s.startswith("pack_")]
    if not idx:
        return None
    top = max(idx)
    gemm = stack[top][1]
    above = [s for _, s in stack[top + 1:]]
    caller = above[0] if above else ""
    if caller in ("linear_kernel", "tg_linear", "tg_linear_into"):
        chain = above[:4]
        if "run_code" in above or "cell_step" in above or any(
                s.endswith("_step") and s.startswith(("lstm", "gru", "rnn"))
                for s in above[:6]):
            return "recurrent forward"
        if "tg_rnn_forward" in chain:
            return "input projection"
        return "decoder forward"
    if caller == "linear_grads":
        if "prepacked" in gemm or "pack_b" in gemm or \
                sites.kind(stack[top + 1][0]) == "dx, prepacked":
            return "recurrent dx"
        return "dW, all" if sites.kind(stack[top + 1][0]) == "dW" \
            else "dx, projections"
    return "other matmul (" + caller + ")"


def flops(cell, E, H, L, V):
    """matmul FLOPs per token of each part (the reference's count)"""
    G = {"gru": 3, "rnn": 1}.get(cell, 4)
    rec = L * 2 * G * H * H
    inp = sum(2 * G * H * (E if l == 0 else H) for l in range(L))
    dec = 2 * H * V
    return {"recurrent forward": rec, "input projection": inp,
            "decoder forward": dec, "recurrent dx": rec,
            "dx, projections": inp + dec, "dW, all": rec + inp + dec}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default="build/bench")
    ap.add_argument("--size", default="medium", choices=sorted(SIZES))
    ap.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    ap.add_argument("--mode", default="train", choices=("train", "forward"))
    ap.add_argument("--opt", default="adam", choices=("adam", "sgd"))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--freq", type=int, default=999)
    ap.add_argument("--keep", default=None,
                    help="keep perf.data and the stacks in this directory")
    a = ap.parse_args()
    E, L, T, B, steps = SIZES[a.size]
    H, V = E, 65
    steps = a.steps or max(steps, 8)
    work = a.keep or tempfile.mkdtemp(prefix="step_profile.")
    os.makedirs(work, exist_ok=True)
    data, text = os.path.join(work, "perf.data"), os.path.join(work, "stacks.txt")
    cmd = [a.bench, "--cell", a.cell, "--mode", a.mode, "--opt", a.opt,
           "--E", str(E), "--H", str(H), "--L", str(L), "--T", str(T),
           "--B", str(B), "--V", str(V), "--steps", str(steps),
           "--warmup", "2", "--threads", "1"]
    try:
        r = subprocess.run(["perf", "record", "-q", "-F", str(a.freq),
                            "--call-graph", "dwarf,32768", "-o", data, "--"]
                           + cmd, capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("step_profile: no perf (apt-get install linux-perf)")
    line = next((l for l in r.stdout.splitlines() if l.startswith("tapegrad ")), None)
    if r.returncode != 0 or not line:
        sys.exit("step_profile: %s failed:\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    with open(text, "w") as out:
        subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym"],
                       stdout=out, stderr=subprocess.DEVNULL, check=True)
    fig = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    ms, peak = float(fig["ms_per_step"]), float(fig["peak_gflops"])

    step_fn = a.mode + "_step"
    sites = Sites(a.bench)
    count = collections.Counter()
    for st in read_stacks(text):
        syms = [s for _, s in st]
        if step_fn not in syms:
            continue  # set-up, the peak loop, warm-up bookkeeping
        part = gemm_role(st, sites)
        if part is None:
            part = next((name for name, frames in OTHER
                         if any(s in frames for s in syms)), None)
        if part is None:
            part = "kernel (page faults, ...)" if int(st[0][0], 16) >= 1 << 63 \
                else "other (" + syms[0] + ")"
        count[part] += 1
    n = sum(count.values())
    if not n:
        sys.exit("step_profile: no samples inside %s" % step_fn)
    per_tok = flops(a.cell, E, H, L, V)
    if a.mode == "forward":
        per_tok = {k: v for k, v in per_tok.items()
                   if k in ("recurrent forward", "input projection", "decoder forward")}
    total = sum(per_tok.values())
    print("%s, %s %s, E=H=%d L=%d T=%d B=%d V=%d, 1 thread: %.1f ms a step "
          "under perf, %.1f%% of the FMA peak (%.0f GFLOP/s); %d samples in "
          "the step\n" % (a.cell, a.mode, a.opt if a.mode == "train" else "",
                          E, L, T, B, V, ms, 100 * float(fig["peak_frac"]),
                          peak, n))
    print("| part of the step | time | matmul FLOPs | GFLOP/s | % of peak |")
    print("|---|---|---|---|---|")
    small = [p for p in count if p not in ROLES and count[p] < n / 200]
    for p in small:  # under 0.5% each: one line
        count["other, under 0.5% each"] += count.pop(p)
    parts = [p for p in ROLES if p in per_tok or count[p]]
    parts += sorted((p for p in count if p not in ROLES), key=lambda p: -count[p])
    tm = 0
    for p in parts:
        share = count[p] / n
        f = per_tok.get(p, 0) * T * B
        rate = f / (share * ms * 1e-3) / 1e9 if share and f else 0
        if p in per_tok:
            tm += share
        print("| %s | %.1f%% | %s | %s | %s |" % (
            p, 100 * share, "%.1f%%" % (100 * per_tok[p] / total) if p in per_tok else "",
            "%.0f" % rate if rate else "", "%.0f%%" % (100 * rate / peak) if rate else ""))
    print("| **all matmuls** | %.1f%% | 100%% | %.0f | %.0f%% |" % (
        100 * tm, total * T * B / (tm * ms * 1e-3) / 1e9,
        100 * total * T * B / (tm * ms * 1e-3) / 1e9 / peak))
    if not a.keep:
        for p in (data, text):
            os.remove(p)
        os.rmdir(work)


if __name__ == "__main__":
    main()
