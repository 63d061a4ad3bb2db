#!/bin/sh
# scripts/scaling.sh - measures data-parallel training on this machine and
# writes docs/scaling.md (tables) and docs/scaling.svg (gnuplot).
#
#   make && make MPI=1 BUILD=build/mpi build/mpi/charlm build/mpi/dist_train
#   sh scripts/scaling.sh [REPEATS]        (default 3; run it alone)
#   sh scripts/scaling.sh 0                (no new runs: the model again,
#                                           from docs/scaling.raw)
#
# 1. 2 ranks x 1 thread against 1 process x 2 threads, medium and large
#    LSTM charlm training (E = H = 256, L = 2, T = 64, B = 32; E = H = 512,
#    T = 128): tokens/s from the time of (S2 - S1) steps (startup and the
#    final evaluation cancel out), median of REPEATS alternating runs, and
#    the communication the 2-rank run reports.
# 2. alpha (latency) and beta (seconds per byte) of one message between two
#    ranks over this machine's loopback (examples/dist_train --pingpong).
# 3. A cost model for N = 2 to 256 nodes (alpha-beta; ring all-reduce, and
#    the ordered chain tapegrad uses for bitwise results), for the medium
#    and large models and one 4x larger (H = 1024), predicting scaling
#    efficiency and the batch per node that keeps communication under 10%.
set -eu
cd "$(dirname "$0")/.."
reps=${1:-3}
one=build/charlm
mpi=build/mpi/charlm
for b in "$one" "$mpi" build/mpi/dist_train; do
    [ -x "$b" ] || { echo "scaling: $b is missing (see the header)"; exit 1; }
done
if ! command -v gnuplot >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq gnuplot-nox >/dev/null
    else
        echo "scaling: gnuplot is missing: sudo apt-get install gnuplot-nox"; exit 1
    fi
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TG_GOVERNOR=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 300 KB of text: its 5% held out is evaluated quickly (the evaluation at
# the end of a run cancels out of the difference anyway)
if [ -d /usr/share/games/fortunes ]; then
    cat /usr/share/games/fortunes/fortunes /usr/share/games/fortunes/literature /usr/share/games/fortunes/science /usr/share/games/fortunes/wisdom 2>/dev/null | head -c 300000 > "$tmp/corpus.txt"
else
    yes "the quick brown fox jumps over the lazy dog." | head -c 300000 > "$tmp/corpus.txt"
fi
corpus=$tmp/corpus.txt
raw=docs/scaling.raw

# seconds of one run: $1 = steps, the rest the command
timed() {
    steps=$1; shift
    t0=$(date +%s.%N)
    "$@" --steps "$steps" --eval-every 100000 --save "$tmp/x.st" --overwrite \
        > /dev/null 2> "$tmp/err" || { cat "$tmp/err"; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'
}
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

if [ "$reps" -gt 0 ]; then
: > "$raw"
for size in medium large; do
    if [ $size = medium ]; then F="--hidden 256 --embed 256 --layers 2 --seq 64 --batch 32"; s1=2; s2=32
    else F="--hidden 512 --embed 512 --layers 2 --seq 128 --batch 32"; s1=1; s2=9; fi
    T=$(echo "$F" | sed 's/.*--seq \([0-9]*\).*/\1/')
    for r in $(seq "$reps"); do
        for how in threads ranks; do
            if [ $how = threads ]; then
                set -- "$one" train --data "$corpus" $F --threads 2 --blocks 1
            else
                set -- mpirun --oversubscribe --bind-to none -np 2 "$mpi" train \
                    --data "$corpus" $F --threads 1 --blocks 2
            fi
            a=$(timed $s1 "$@")
            b=$(timed $s2 "$@")
            tps=$(awk -v s1=$s1 -v s2=$s2 -v T=$T -v a="$a" -v b="$b" 'BEGIN {print (s2 - s1) * T * 32 / (b - a)}')
            comm=$(grep -o 'communication: .*' "$tmp/err" || true)
            echo "$size $how run $r tokens_per_s $tps $comm" | tee -a "$raw"
        done
    done
done
build/mpi/dist_train --pingpong > /dev/null 2>&1 || true
mpirun --oversubscribe --bind-to none -np 2 build/mpi/dist_train --pingpong | tee -a "$raw"
fi
reps=$(grep -c '^medium threads' "$raw")

# ---- tables and the model --------------------------------------------------
tps() { grep "^$1 $2 " "$raw" | awk '{print $6}' | median; }
wait_ms() { grep "^$1 ranks " "$raw" | sed -n 's/.*communication: \([0-9.]*\) ms per step waiting.*/\1/p' | median; }
over_ms() { grep "^$1 ranks " "$raw" | sed -n 's/.*backward, \([0-9.]*\) ms while.*/\1/p' | median; }
alpha=$(awk '/^pingpong bytes 8 / {print $5}' "$raw")
big=$(awk '/^pingpong/ {b = $3; s = $5} END {print b, s}' "$raw")
beta=$(echo "$big" | awk -v a="$alpha" '{print ($2 - a) / $1}')

# parameters of charlm: embedding, L layers of 4 gates, decoder (V = 100)
params() { awk -v H="$1" -v L=2 -v V=100 'BEGIN {
    p = V * H + 4 * H * H + 4 * H * H + 8 * H + (L - 1) * (8 * H * H + 8 * H) + H * V + V; print p }'; }
Pm=$(params 256); Pl=$(params 512); Px=$(params 1024)
{
echo "# Data-parallel training: measured here, and a model for many machines"
echo
echo "Made by \`sh scripts/scaling.sh $reps\` on $(date -u +%Y-%m-%d) ($(nproc) vCPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}'), shared memory between ranks). Raw lines: \`scaling.raw\`."
echo
echo "## 2 ranks x 1 thread against 1 process x 2 threads"
echo
echo "charlm training of an LSTM (Adam) on 300 KB of the fortunes, tokens/s from the time of 30 (medium) or 8 (large) steps (the difference of two runs, so that start-up and the final evaluation cancel), medians of $reps alternating runs. The 2-rank run cuts each batch of 32 streams into 2 blocks of 16 (\`--blocks 2\`); the 1-process run computes the 32 streams together on 2 threads."
echo
echo "| model | 1 process x 2 threads, tokens/s | 2 ranks x 1 thread, tokens/s | ranks / threads | waiting for messages after backward, ms/step | messages in flight while backward ran, ms/step |"
echo "|---|---|---|---|---|---|"
for size in medium large; do
    a=$(tps $size threads); b=$(tps $size ranks)
    printf "| %s | %.0f | %.0f | %.2fx | %s | %s |\n" $size "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')" "$(wait_ms $size)" "$(over_ms $size)"
done
echo
echo "## One message between two ranks (loopback)"
echo
awk -v a="$alpha" -v b="$beta" 'BEGIN {printf "alpha (latency) = %.2f us; beta = %.3f ns per byte (%.1f GB/s), from an 8-byte and a 16 MiB ping-pong (shared memory between two processes).\n", a * 1e6, b * 1e9, 1 / b / 1e9}'
echo
echo "## Model: N nodes, one rank per node"
echo
echo "A step on N nodes takes t_c(b) + t_comm(N), b the streams per node, one core per node as here (nodes with many cores compute faster, which makes communication weigh more: divide t_c by the cores). t_c is measured above (the 2-rank run's time per step, less its wait, for b = 16 streams, taken as proportional to b; the 4x model's scaled by its parameters). No overlap is assumed: a recurrent network's largest gradients (the recurrent weights) are complete only at the end of backward, which the 'in flight' column above shows. Gradients are float32, S = 4 P bytes."
echo
echo "- ring all-reduce (NCCL, Horovod): t = 2 (N - 1) alpha + 2 (N - 1) / N S beta;"
echo "- ordered chain (tapegrad's, bitwise equal for any N): buckets of k bytes go along the ranks and the sum comes back, pipelined: t = 2 (N - 2 + S / k) (alpha + k beta), with the best bucket k = sqrt(S alpha / ((N - 2) beta)) (at least 4 KB, at most S; \`tg_dist_grads_new\`'s bucket_bytes, 4 MB by default, which suits a few nodes)."
echo
echo "Network parameters as measured here over shared memory are optimistic for real machines; the second table uses alpha = 5 us and beta = 0.1 ns/B (10 GB/s, a 100 Gb/s network) instead."
} > docs/scaling.md

model() { # $1 alpha $2 beta $3 plot data file $4 cores per node -> rows
    for m in medium large x4; do
        case $m in medium) P=$Pm; ts=$(echo "$(tps medium ranks)" | awk -v T=64 '{print T * 32 / $1}');;
                   large) P=$Pl; ts=$(echo "$(tps large ranks)" | awk -v T=128 '{print T * 32 / $1}');;
                   x4) P=$Px; ts=$(echo "$(tps large ranks)" | awk -v T=128 -v r="$(awk -v x=$Px -v l=$Pl 'BEGIN {print x / l}')" '{print T * 32 / $1 * r}');; esac
        awk -v a="$1" -v b="$2" -v P="$P" -v ts="$ts" -v m="$m" -v plot="$3" -v cores="${4:-1}" 'BEGIN {
            S = 4 * P; tc = ts / cores   # per step at b = 16
            row = sprintf("| %s | %.1f M | %.0f ms |", m, P / 1e6, tc * 1e3)
            for (N = 2; N <= 256; N *= 2) {
                ring = 2 * (N - 1) * a + 2 * (N - 1) / N * S * b
                k = N > 2 ? sqrt(S * a / ((N - 2) * b)) : S
                if (k < 4096) k = 4096
                if (k > S) k = S
                chain = 2 * (N - 2 + S / k) * (a + k * b)
                if (plot != "") printf "%s %d %.4f %.4f\n", m, N, tc / (tc + ring), tc / (tc + chain) >> plot
                if (N == 8 || N == 64 || N == 256) {
                    row = row sprintf(" %.0f%% / %.0f%% (b >= %d / %d) |", 100 * tc / (tc + ring), 100 * tc / (tc + chain), int(9 * ring / (tc / 16)) + 1, int(9 * chain / (tc / 16)) + 1)
                }
            }
            print row }'
    done
}
{
echo
echo "Predicted scaling efficiency at b = 16 streams per node, ring / chain, and (in brackets) the streams per node that keep communication under 10% of a step, ring / chain:"
echo
echo "### alpha and beta measured here"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 |"
echo "|---|---|---|---|---|---|"
model "$alpha" "$beta" "$tmp/plot.dat"
echo
echo "### alpha = 5 us, beta = 0.1 ns/B (a 100 Gb/s network)"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 |"
echo "|---|---|---|---|---|---|"
model 5e-6 1e-10 "" 1
echo
echo "### the same network, 32-core nodes (compute 32 times faster per node)"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 |"
echo "|---|---|---|---|---|---|"
model 5e-6 1e-10 "$tmp/plot_net.dat" 32
echo
echo "![predicted scaling efficiency](scaling.svg)"
echo
echo "Reading it: with one core per node a step computes for so long that neither scheme costs much; with 32-core nodes the models here become communication-bound at a few hundred nodes unless each node gets more streams (the brackets). The chain pays 2 (N - 2) extra bucket hops per step, even with the best bucket: it falls behind the ring as N grows (compare the two figures of each cell), and in exchange its results do not depend on N - a run can move between 8 and 64 nodes and still reproduce itself. A ring (or a tree) would be the choice where that does not matter. On this 2-core machine both schemes are the same two messages, and what the first table measures beyond them is mostly one rank waiting for the other to finish its backward."
} >> docs/scaling.md
gnuplot <<EOF
set terminal svg size 720,420 font "sans,11" background rgb "white"
set output "docs/scaling.svg"
set logscale x 2
set xlabel "nodes N (b = 16 streams per node, 32 cores per node)"
set ylabel "predicted scaling efficiency"
set yrange [0:1.05]
set key bottom left
set title "charlm data-parallel: ring vs ordered chain (model: 100 Gb/s, 32-core nodes)"
plot for [m in "medium large x4"] "< grep '^".m." ' $tmp/plot_net.dat" using 2:3 with linespoints title m." ring", \
     for [m in "medium large x4"] "< grep '^".m." ' $tmp/plot_net.dat" using 2:4 with linespoints dashtype 2 title m." chain"
EOF
echo "scaling: wrote docs/scaling.md and docs/scaling.svg"
