#!/usr/bin/env python3
"""Runs tapegrad's build/bench and scripts/bench_torch_rnn.py (the same
benchmark in PyTorch, same flags and output) on the same
configurations, one after the other in one session, and prints a Markdown
table of both figures and their ratio (tapegrad tokens/s over PyTorch's).

  scripts/bench_compare.py [--sizes tiny,small,medium,large] [--cells lstm,gru,rnn]
                           [--modes train,forward,sample] [--opts sgd,adam]
                           [--threads 1,2] [--torch-script PATH] [--out FILE]
                           [--repeat N] [--baseline OLD_BUILD/bench]

Sample rows also get a second table: each against sampling's own limit,
the nearer of reading every weight once per token step and the FLOPs at
the peak (build/bench's "limit" lines), for tapegrad and PyTorch alike.

The "% of FMA peak" column divides each program's GFLOP/s by the fp32 FMA
peak that build/bench measures on this machine (peak_gflops), so figures
from machines with and without AVX-512 can be compared.

PyTorch is given its best, as a user's machine would have it
(scripts/bench_torch_rnn.py says why): OpenBLAS on its AVX-512 kernels, `--threads 1` for one core and
`--threads 1 --blas-threads 2` for two. Debian 12's OpenBLAS (0.3.21) does
not recognise some newer CPUs (this VM's among them) and falls back to its
SSE3 "Prescott" kernels at half the speed, so the kernels are named from
the CPU's flags (/proc/cpuinfo): SkylakeX with AVX-512, Haswell with AVX2
and FMA, else OpenBLAS's own choice (--torch-blas-core NAME to force one;
"auto" leaves OpenBLAS to choose), OPENBLAS_L2_SIZE unset, for that
command only. Needs
Debian's python3-torch with libopenblas0-pthread (/usr/bin/python3). Raw
lines of both programs go to FILE.raw as well.
"""
import argparse
import os
import subprocess
import sys

def blas_core_from_cpu():
    """The best OpenBLAS core this CPU runs: a core it cannot run dies
    with SIGILL (SkylakeX on an AVX2-only EPYC)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f
                          if l.startswith("flags")), [])
    except OSError:
        return "auto"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "SkylakeX"
    if {"avx2", "fma"} <= set(flags):
        return "Haswell"
    return "auto"


SIZES = {  # E=H, L, T, B, timed steps
    "tiny": (64, 1, 32, 1, 50),
    "small": (128, 1, 64, 16, 30),
    "medium": (256, 2, 64, 32, 12),
    "large": (512, 2, 128, 32, 5),
}


def parse(line):
    words = line.split()
    return {k: v for k, v in (w.split("=", 1) for w in words[2:] if "=" in w)}


def median_lines(runs):
    """Of several runs (lists of result lines in the same order), the line
    with the median ms_per_step for each position."""
    out = []
    for group in zip(*runs):
        group = sorted(group, key=lambda l: float(parse(l)["ms_per_step"]))
        out.append(group[len(group) // 2])
    return out


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr[-2000:]))
    return [l for l in r.stdout.splitlines()
            if l.startswith(("tapegrad ", "torch ", "limit "))]


def split_limits(lines):
    """(result lines, {cell: limit fields}) of one run: build/bench follows
    each sample result with a "limit" line (sampling's own limit)."""
    res = [l for l in lines if not l.startswith("limit ")]
    lim = {l.split()[1]: parse(l) for l in lines if l.startswith("limit ")}
    return res, lim


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="tiny,small,medium,large")
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--modes", default="train,forward,sample")
    ap.add_argument("--opts", default="sgd,adam")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--torch-script", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "bench_torch_rnn.py"))
    ap.add_argument("--bench", default="build/bench")
    ap.add_argument("--out", default=None)
    ap.add_argument("--torch-blas-core", default=None,
                    help="OpenBLAS core for PyTorch (default: from the "
                         "CPU's flags; auto: OpenBLAS's choice)")
    ap.add_argument("--baseline", default=None,
                    help="another build/bench (an older tapegrad) run in the same "
                         "session, alternating with the other two: adds its time "
                         "and the speed-up over it")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each group this many times, alternating the two "
                         "programs, and keep each row's median (a shared machine "
                         "can lose a core for seconds)")
    a = ap.parse_args()
    torch_env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        torch_env.pop(k, None)
    core = a.torch_blas_core or blas_core_from_cpu()
    if core != "auto":
        torch_env["OPENBLAS_CORETYPE"] = core
    print(f"PyTorch's OpenBLAS kernels: {core}", file=sys.stderr)
    rows, raw, srows = [], [], []
    for size in a.sizes.split(","):
        E, L, T, B, steps = SIZES[size]
        for th in a.threads.split(","):
            common = ["--cell", a.cells, "--mode", a.modes, "--opt", a.opts,
                      "--E", str(E), "--H", str(E), "--L", str(L), "--T", str(T),
                      "--B", str(B), "--V", "65", "--steps", str(steps),
                      "--warmup", "2"]
            tflags = ["--threads", "1"] + (["--blas-threads", th] if th != "1" else [])
            runs_ours, runs_theirs, runs_base, limits = [], [], [], []
            for _ in range(a.repeat):
                lines = run([a.bench] + common + ["--threads", th])
                res, lim = split_limits(lines)
                runs_ours.append(res)
                limits.append(lim)
                raw += [l for l in lines if l.startswith("limit ")]
                runs_theirs.append(run(["/usr/bin/python3", a.torch_script] + common
                                       + tflags, env=torch_env))
                libs = {parse(l).get("blas_lib", "?") for l in runs_theirs[-1]}
                if not any("openblas" in x for x in libs):
                    sys.exit("PyTorch ran on BLAS %s, not OpenBLAS: a table against "
                             "the reference BLAS would flatter tapegrad 10-30x. "
                             "Install it: apt-get install libopenblas0-pthread"
                             % ",".join(sorted(libs)))
                raw += runs_ours[-1] + runs_theirs[-1]
                if a.baseline:
                    runs_base.append([l.replace("tapegrad ", "baseline ", 1) for l in
                                      run([a.baseline] + common + ["--threads", th])])
                    raw += runs_base[-1]
            ours, theirs = median_lines(runs_ours), median_lines(runs_theirs)
            base = {}
            for line in (median_lines(runs_base) if runs_base else []):
                f = parse(line)
                base[(line.split()[1], f["mode"], f["opt"])] = float(f["ms_per_step"])
            ref = {}
            for line in theirs:
                w = line.split()
                f = parse(line)
                ref[(w[1], f["mode"], f["opt"])] = f
            for line in ours:
                w = line.split()
                f = parse(line)
                t = ref.get((w[1], f["mode"], f["opt"]))
                if not t:
                    continue
                ratio = float(f["tokens_per_s"]) / float(t["tokens_per_s"])
                peak = float(f.get("peak_gflops", "nan"))
                b_ms = base.get((w[1], f["mode"], f["opt"]), float("nan"))
                if f["mode"] == "sample" and any(w[1] in l for l in limits):
                    # sampling against its own limit (build/bench): the
                    # median over the runs of the nearer limit's share
                    fr = sorted(float(l[w[1]]["bound_frac"]) for l in limits
                                if w[1] in l)
                    l0 = next(l[w[1]] for l in limits if w[1] in l)
                    lim_us = max(float(l0["us_read"]), float(l0["us_flops"]))
                    t_us = float(t["ms_per_step"]) * 1e3 / T
                    srows.append((size, w[1], th, float(l0["weights_mb"]),
                                  float(l0["read_gbs"]), float(l0["us_read"]),
                                  float(l0["us_flops"]), l0["bound"],
                                  float(f["ms_per_step"]) * 1e3 / T,
                                  100 * fr[len(fr) // 2], t_us, 100 * lim_us / t_us))
                rows.append((size, w[1], f["mode"], f["opt"], th, b_ms,
                             float(f["ms_per_step"]), float(t["ms_per_step"]),
                             ratio, float(f["gflops"]),
                             100 * float(f["gflops"]) / peak,
                             100 * float(t["gflops"]) / peak,
                             float(f["peak_rss_mb"]), float(t["peak_rss_mb"])))
                print("%-6s %-4s %-7s %-4s threads=%s  before %9.3f ms  tapegrad %9.3f ms  "
                      "torch %9.3f ms  ratio %5.2fx" % rows[-1][:9], flush=True)
    peaks = sorted({float(parse(l).get("peak_gflops", "nan")) for l in raw
                    if l.startswith("tapegrad ")})
    lines = ["| size | cell | mode | opt | threads | before ms/step | tapegrad ms/step "
             "| PyTorch ms/step | speed-up vs PyTorch | tapegrad GFLOP/s "
             "| % of FMA peak (tapegrad / PyTorch) | peak RSS MB (tapegrad / PyTorch) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| %s | %s | %s | %s | %s | %.3f | %.3f | %.3f | %.2fx | %.1f "
                     "| %.0f%% / %.0f%% | %.0f / %.0f |" % r)
    lines.append("")
    lines.append("fp32 FMA peak measured by build/bench (GFLOP/s, per run and thread "
                 "count): " + ", ".join("%.1f" % p for p in peaks))
    if srows:
        lines += ["", "Sampling against its own limit, per token step (B streams): "
                  "reading every weight once at the bandwidth measured on a buffer "
                  "of their size, or the FLOPs at the FMA peak, whichever takes "
                  "longer (build/bench's \"limit\" lines; tapegrad's share is the "
                  "median over the runs).", "",
                  "| size | cell | threads | weights MB | read GB/s | us to read | "
                  "us of FLOPs | bound | tapegrad us | tapegrad % of limit "
                  "| PyTorch us | PyTorch % of limit |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in srows:
            lines.append("| %s | %s | %s | %.2f | %.1f | %.1f | %.1f | %s | %.1f "
                         "| %.0f%% | %.1f | %.0f%% |" % r)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        with open(a.out + ".raw", "w") as f:
            f.write("\n".join(raw) + "\n")


if __name__ == "__main__":
    main()
