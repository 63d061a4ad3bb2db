#!/bin/sh
# Trains the same character model with tapegrad (build/charlm) and with the
# PyTorch reference (scripts/train_torch_charlm.py), same flags,
# same data, same number of steps, and plots both validation-loss curves.
#
#   scripts/compare_learning.sh [OUTDIR] [-- extra flags for both]
#
# Needs PyTorch with OpenBLAS (Debian python3-torch libopenblas0-pthread,
# run with /usr/bin/python3) and gnuplot (Debian gnuplot-nox). Writes OUTDIR/tapegrad.jsonl,
# OUTDIR/torch.jsonl and OUTDIR/learning_curves.svg (default OUTDIR:
# docs/learning) and prints both final validation losses.
set -eu
out=${1:-docs/learning}
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
ref=${TORCH_CHARLM:-scripts/train_torch_charlm.py}
flags="--cell lstm --layers 2 --hidden 128 --embed 64 --seq 64 --batch 32 \
--steps 1000 --optim adam --lr 2e-3 --clip 5 --seed 1 --threads 1 \
--val-frac 0.05 --eval-every 50 $*"
mkdir -p "$out"
rm -f "$out/tapegrad.jsonl" "$out/torch.jsonl"
make -s build/charlm
# shellcheck disable=SC2086
build/charlm train $flags --overwrite --save "$out/tapegrad.safetensors" --log "$out/tapegrad.jsonl" >/dev/null
# PyTorch's BLAS on the best kernels this CPU runs, as on a user's
# machine (see scripts/bench_compare.py for why they are named: a core
# the CPU lacks dies with SIGILL), on one BLAS thread: this compares
# learning, not speed, and an OpenBLAS pool next to PyTorch's own thread
# oversubscribes a 2-core machine.
flags_cpu=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { case " $flags_cpu " in *" $1 "*) return 0 ;; esac; return 1; }
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then core=SkylakeX
elif has avx2 && has fma; then core=Haswell
else core=""; fi
core=${TORCH_BLAS_CORE:-$core}
# shellcheck disable=SC2086
env -u OPENBLAS_L2_SIZE ${core:+OPENBLAS_CORETYPE=$core} OPENBLAS_NUM_THREADS=1 \
    /usr/bin/python3 "$ref" $flags --log "$out/torch.jsonl" >/dev/null
# step and val_loss columns of each JSON line, for gnuplot
for impl in tapegrad torch; do
    sed -n 's/.*"step": *\([0-9]*\).*"val_loss": *\([0-9.eE+-]*\).*/\1 \2/p' \
        "$out/$impl.jsonl" > "$out/$impl.dat"
done
gnuplot <<GP
set terminal svg size 720,420 font "sans,12" background rgb "white"
set output "$out/learning_curves.svg"
set title "Character LSTM on fortunes: validation loss (same flags, data, steps)"
set xlabel "training step"
set ylabel "validation loss (nats/char)"
set grid
plot "$out/tapegrad.dat" with linespoints title "tapegrad", \
     "$out/torch.dat" with linespoints title "PyTorch 1.13"
GP
a=$(tail -n 1 "$out/tapegrad.dat" | cut -d' ' -f2)
b=$(tail -n 1 "$out/torch.dat" | cut -d' ' -f2)
echo "final validation loss: tapegrad $a  torch $b  (ratio $(echo "$a / $b" | bc -l | cut -c1-6))"
echo "plot: $out/learning_curves.svg"
