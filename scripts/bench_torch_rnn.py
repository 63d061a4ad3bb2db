#!/usr/bin/python3
"""build/bench in PyTorch: times complete training, forward and sampling
steps of a character model, with build/bench's flags and output format, so
that the two can be run in one session and their lines divided
(scripts/bench_compare.py does that).

    /usr/bin/python3 scripts/bench_torch_rnn.py --cell lstm --mode train \\
        --opt sgd --E 256 --H 256 --L 2 --T 64 --B 32 --threads 1 --steps 20
    /usr/bin/python3 scripts/bench_torch_rnn.py   (no flags: build/bench's
        whole table - four sizes, every cell and mode, 1 and 2 threads)

Model: Embedding(V, E) -> L layers of nn.LSTM / nn.GRU / nn.RNN (tanh), or
lstm_manual (an LSTM composed from primitive ops step by step: linear,
add, chunk, sigmoid, tanh, mul, stack) -> Linear(H, V) -> mean
cross-entropy over the T*B positions; a zero initial state every batch;
random tokens and targets (four batches, used in turn).
Modes: train (forward + backward + SGD lr 0.1 or Adam lr 1e-3), forward
(no-grad over the batch), sample (no-grad autoregressive generation of T
tokens for B streams, one step per call: embedding -> cell -> linear ->
softmax -> multinomial).

One line per result, as build/bench's with "torch" first and no peak:
  torch lstm mode=train opt=sgd E=.. H=.. L=.. T=.. B=.. V=.. threads=..
  ms_per_step=.. tokens_per_s=.. ms_min=.. ms_mean=.. ms_p90=.. cv=..
  gflop_per_step=.. gflops=.. cpu_util=.. steps=.. peak_rss_mb=..
  blas_core=.. [tag=..]
ms_per_step is the median over --steps timed steps after --warmup;
gflop_per_step counts the matmul FLOPs of the recurrent layers and the
decoder (2*G*H*(I+H) per token per layer, G = 4 LSTM, 3 GRU, 1 RNN, plus
2*H*V; train = 3x forward), as build/bench counts them.

Threads: --threads N sets PyTorch's threads, --blas-threads M (default N)
OpenBLAS's; both are set before torch is imported. Debian's PyTorch runs
its own pool beside OpenBLAS's, so on two cores its best is
`--threads 1 --blas-threads 2`, on one `--threads 1`.

Give PyTorch its fastest BLAS: Debian 12's OpenBLAS (0.3.21) misdetects
some newer CPUs and falls back to slow kernels (OPENBLAS_VERBOSE=2 shows
which run). On a CPU with AVX-512 run this script under
`env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX` - in that command
only (scripts/bench_compare.py does so; --torch-blas-core there).
blas_core= in the output says what was asked for ("auto": OpenBLAS chose),
blas_lib= which BLAS library was loaded (the name of its directory:
openblas-pthread; "blas" is the reference BLAS, ten to thirty times slower,
which Debian's PyTorch gets when libopenblas0-pthread is not installed).
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

CELLS = ("lstm", "gru", "rnn", "lstm_manual")
SIZES = ((64, 1, 32, 1, 50), (128, 1, 64, 16, 30), (256, 2, 64, 32, 15),
         (512, 2, 128, 32, 6))  # build/bench's table: E=H, L, T, B, steps


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", default="lstm", help="comma list of " + ",".join(CELLS))
    ap.add_argument("--mode", default="train", help="comma list of train,forward,sample")
    ap.add_argument("--opt", default="sgd", help="comma list of sgd,adam (train mode)")
    for name, default in (("E", 128), ("H", 128), ("L", 1), ("T", 64), ("B", 16),
                          ("V", 65), ("threads", 1), ("steps", 50)):
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--blas-threads", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    a = ap.parse_args(argv)
    for name in ("E", "H", "L", "T", "B", "V", "threads", "steps"):
        if getattr(a, name) < 1:
            ap.error("--%s needs a positive integer" % name)
    for cell in a.cell.split(","):
        if cell not in CELLS:
            ap.error("unknown cell '%s' (%s)" % (cell, ", ".join(CELLS)))
    for mode in a.mode.split(","):
        if mode not in ("train", "forward", "sample"):
            ap.error("unknown mode '%s' (train, forward, sample)" % mode)
    for opt in a.opt.split(","):
        if opt not in ("sgd", "adam"):
            ap.error("unknown optimizer '%s' (sgd, adam)" % opt)
    return a


def build(torch, cell, a):
    nn = torch.nn

    class ManualLSTM(nn.Module):
        """nn.LSTM's parameters, run one primitive op at a time."""

        def __init__(self, E, H, L):
            super().__init__()
            self.H, self.L = H, L
            self.ref = nn.LSTM(E, H, num_layers=L)  # for its parameters

        def step(self, l, x, h, c):
            w_ih, w_hh, b_ih, b_hh = (getattr(self.ref, "%s_l%d" % (n, l)) for n in
                                      ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            i, f, g, o = (torch.nn.functional.linear(x, w_ih, b_ih)
                          + torch.nn.functional.linear(h, w_hh, b_hh)).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            return torch.sigmoid(o) * torch.tanh(c), c

        def forward(self, x, state=None):
            T, B, _ = x.shape
            if state is None:
                z = x.new_zeros(self.L, B, self.H)
                state = (z, z)
            hs, cs = list(state[0]), list(state[1])
            ys = []
            for t in range(T):
                y = x[t]
                for l in range(self.L):
                    hs[l], cs[l] = self.step(l, y, hs[l], cs[l])
                    y = hs[l]
                ys.append(y)
            return torch.stack(ys), (torch.stack(hs), torch.stack(cs))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(a.V, a.E)
            self.rnn = {"lstm": lambda: nn.LSTM(a.E, a.H, num_layers=a.L),
                        "gru": lambda: nn.GRU(a.E, a.H, num_layers=a.L),
                        "rnn": lambda: nn.RNN(a.E, a.H, num_layers=a.L),
                        "lstm_manual": lambda: ManualLSTM(a.E, a.H, a.L)}[cell]()
            self.decoder = nn.Linear(a.H, a.V)

        def forward(self, x, state=None):
            y, state = self.rnn(self.embedding(x), state)
            return self.decoder(y), state

    return Model()


def gflop_per_step(cell, mode, a):
    G = {"gru": 3, "rnn": 1}.get(cell, 4)
    per_tok = sum(2.0 * G * a.H * ((a.H if l else a.E) + a.H) for l in range(a.L))
    per_tok += 2.0 * a.H * a.V
    fwd = per_tok * a.T * a.B
    return (3 * fwd if mode == "train" else fwd) / 1e9


def run(torch, a, cell, mode, opt):
    torch.manual_seed(a.seed)
    model = build(torch, cell, a)
    g = torch.Generator().manual_seed(a.seed + 1)
    batches = [(torch.randint(a.V, (a.T, a.B), generator=g),
                torch.randint(a.V, (a.T, a.B), generator=g)) for _ in range(4)]
    it = [0]
    if mode == "train":
        optim = (torch.optim.Adam(model.parameters(), lr=1e-3) if opt == "adam"
                 else torch.optim.SGD(model.parameters(), lr=0.1))

    def train_step():
        x, y = batches[it[0] % 4]
        it[0] += 1
        optim.zero_grad()
        logits, _ = model(x)
        torch.nn.functional.cross_entropy(logits.reshape(-1, a.V), y.reshape(-1)).backward()
        optim.step()

    def forward_step():
        x, _ = batches[it[0] % 4]
        it[0] += 1
        with torch.no_grad():
            model(x)

    def sample_step():
        tok = batches[it[0] % 4][0][:1]  # [1, B]
        it[0] += 1
        state = None
        with torch.no_grad():
            for _ in range(a.T):
                logits, state = model(tok, state)
                probs = torch.softmax(logits[0], -1)
                tok = torch.multinomial(probs, 1, generator=g).view(1, -1)

    step = {"train": train_step, "forward": forward_step, "sample": sample_step}[mode]
    for _ in range(a.warmup):
        step()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    cpu_util = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-12)
    med, mean = statistics.median(times), statistics.fmean(times)
    sd = statistics.pstdev(times)
    p90 = sorted(times)[min(a.steps - 1, int(0.9 * a.steps))]
    gf = gflop_per_step(cell, mode, a)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    line = ("torch %s mode=%s opt=%s E=%d H=%d L=%d T=%d B=%d V=%d threads=%d "
            "ms_per_step=%.4f tokens_per_s=%.1f ms_min=%.4f ms_mean=%.4f "
            "ms_p90=%.4f cv=%.3f gflop_per_step=%.4f gflops=%.2f cpu_util=%.2f "
            "steps=%d peak_rss_mb=%.0f blas_core=%s blas_lib=%s"
            % (cell, mode, opt if mode == "train" else "-", a.E, a.H, a.L, a.T, a.B,
               a.V, a.threads, med * 1e3, a.T * a.B / med, min(times) * 1e3,
               mean * 1e3, p90 * 1e3, sd / mean, gf, gf / med, cpu_util, a.steps,
               rss, os.environ.get("OPENBLAS_CORETYPE", "auto"), blas_lib()))
    print(line + (" tag=" + a.tag if a.tag else ""), flush=True)


def blas_lib():
    """The BLAS library this process has loaded (Debian's libblas.so.3 is
    an alternative: OpenBLAS, or the slow reference BLAS when
    libopenblas0-pthread is not installed): the name of its directory,
    e.g. openblas-pthread, or blas for the reference one."""
    try:
        with open("/proc/self/maps") as f:
            paths = {l.split()[-1] for l in f if "blas" in l.rsplit("/", 1)[-1]}
    except OSError:
        return "unknown"
    names = sorted({os.path.basename(os.path.dirname(os.path.realpath(p)))
                    for p in paths if p.startswith("/")})
    return ",".join(names) or "none"


def run_all(torch, a):
    for cell in a.cell.split(","):
        for mode in a.mode.split(","):
            for opt in (a.opt.split(",") if mode == "train" else ["-"]):
                run(torch, a, cell, mode, opt)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # build/bench's whole table, one process per thread count
        for E, L, T, B, steps in SIZES:
            for th in ("1", "2"):
                subprocess.run([sys.executable, os.path.abspath(__file__),
                                "--cell", "lstm,gru,rnn", "--mode", "train,forward,sample",
                                "--opt", "sgd,adam", "--E", str(E), "--H", str(E),
                                "--L", str(L), "--T", str(T), "--B", str(B),
                                "--steps", str(steps), "--warmup", "2",
                                "--threads", th], check=True)
        return
    a = parse_args(argv)
    # OpenBLAS reads its thread count when torch loads it
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["MKL_NUM_THREADS"] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads or a.threads)
    import torch
    torch.set_num_threads(a.threads)
    run_all(torch, a)


if __name__ == "__main__":
    main()
