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
# 3. A cost model for N = 2 to 1024 nodes (alpha-beta; ring all-reduce,
#    and the two sums tapegrad has for bitwise results: the tree and the
#    ordered chain), for the medium and large models and one 4x larger
#    (H = 1024), predicting scaling efficiency and the batch per node that
#    keeps communication under 10%.
# 4. docs/netns.md, if scripts/netns_bench.sh has written it (the model
#    against a network path whose bandwidth is set), and how to run on a
#    cluster.
#
# SCALING_RAW and SCALING_MD write elsewhere than docs/scaling.raw and
# docs/scaling.md (a run on a loaded machine, kept apart).
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
raw=${SCALING_RAW:-docs/scaling.raw}
md=${SCALING_MD:-docs/scaling.md}

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
echo "date $(date -u +%Y-%m-%d) load $(cut -d' ' -f1 /proc/loadavg) reduce tree" >> "$raw"
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
                    --data "$corpus" $F --threads 1 --blocks 2 --reduce tree
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
# (R: another raw file than $raw)
tps() { grep "^$1 $2 " "${R:-$raw}" | awk '{print $6}' | median; }
wait_ms() { grep "^$1 ranks " "${R:-$raw}" | sed -n 's/.*communication: \([0-9.]*\) ms per step waiting.*/\1/p' | median; }
over_ms() { grep "^$1 ranks " "${R:-$raw}" | sed -n 's/.*backward, \([0-9.]*\) ms while.*/\1/p' | median; }
speed_rows() {
    for size in medium large; do
        a=$(tps $size threads); b=$(tps $size ranks)
        printf "| %s | %.0f | %.0f | %.2fx | %s | %s |\n" $size "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN {print b / a}')" "$(wait_ms $size)" "$(over_ms $size)"
    done
}
# a later run with the tree, kept apart when it was made on a loaded machine
tree_raw=${SCALING_TREE_RAW:-docs/scaling_tree.raw}
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
echo "Made by \`sh scripts/scaling.sh $reps\` on $(awk '/^date / {print $2 ($4 != "" ? ", load average " $4 " at the start" : "")}' "$raw" | tail -n 1) ($(nproc) vCPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}'), shared memory between ranks). Raw lines: \`scaling.raw\`."
echo
echo "## 2 ranks x 1 thread against 1 process x 2 threads"
echo
echo "charlm training of an LSTM (Adam) on 300 KB of the fortunes, tokens/s from the time of 30 (medium) or 8 (large) steps (the difference of two runs, so that start-up and the final evaluation cancel), medians of $reps alternating runs. The 2-rank run cuts each batch of 32 streams into 2 blocks of 16 (\`--blocks 2\`) and sums them with $(awk '/^date / {r = $6} END {print r != "" ? "the " r : "the chain (these runs predate the tree; with 2 blocks both make the same addition, and the tree sends each half of the sum at the same time as the other rank does)"}' "$raw"); the 1-process run computes the 32 streams together on 2 threads."
echo
echo "| model | 1 process x 2 threads, tokens/s | 2 ranks x 1 thread, tokens/s | ranks / threads | waiting for messages after backward, ms/step | messages in flight while backward ran, ms/step |"
echo "|---|---|---|---|---|---|"
speed_rows
if [ -f "$tree_raw" ] && [ "$tree_raw" != "$raw" ]; then
    echo
    treps=$(grep -c '^medium threads' "$tree_raw")
    if [ "$treps" -ge 5 ]; then
        how="medians of $treps alternating runs with nothing else running (a load average above 1 at the start is what ran just before)"
    else
        how="$treps run(s) each, on a machine shared with other work: these figures say little about speed - the 2 threads of one process wait for each other at every parallel loop, and on a busy machine one of them is often not running, which costs the threads far more than the ranks; run it again with 5 repeats on a quiet machine"
    fi
    echo "The same with the tree, the default (\`SCALING_RAW=$tree_raw SCALING_MD=/dev/null SCALING_SVG=/dev/null sh scripts/scaling.sh $treps\`, then \`sh scripts/scaling.sh 0\`, on $(awk '/^date / {print $2 ", load average " $4 " at the start"}' "$tree_raw"); $how):"
    echo
    echo "| model | 1 process x 2 threads, tokens/s | 2 ranks x 1 thread, tokens/s | ranks / threads | waiting for messages after backward, ms/step | messages in flight while backward ran, ms/step |"
    echo "|---|---|---|---|---|---|"
    (R=$tree_raw; speed_rows)
fi
echo
echo "Correctness is tested apart from speed: \`tests/dist.sh\` runs the tree on 1, 2, 4 and 8 ranks (more ranks than cores: oversubscribed), over shared memory and over TCP, and compares their bits with one process."
echo
echo "## One message between two ranks (loopback)"
echo
awk -v a="$alpha" -v b="$beta" 'BEGIN {printf "alpha (latency) = %.2f us; beta = %.3f ns per byte (%.1f GB/s), from an 8-byte and a 16 MiB ping-pong (shared memory between two processes).\n", a * 1e6, b * 1e9, 1 / b / 1e9}'
echo
echo "## Model: N nodes, one rank per node"
echo
echo "A step on N nodes takes t_c(b) + t_comm(N), b the streams per node, one core per node as here (nodes with many cores compute faster, which makes communication weigh more: divide t_c by the cores). t_c is measured above (the 2-rank run's time per step, less its wait, for b = 16 streams, taken as proportional to b; the 4x model's scaled by its parameters). No overlap is assumed: a recurrent network's largest gradients (the recurrent weights) are complete only at the end of backward, which the 'in flight' column above shows. Gradients are float32, S = 4 P bytes."
echo
echo "- ring all-reduce (NCCL, Horovod; \`--reduce ring\` is MPI's own all-reduce, whose algorithm MPI chooses): t = 2 (N - 1) alpha + 2 (N - 1) / N S beta;"
echo "- tree (tapegrad's default, \`--reduce tree\`, bitwise equal for N a power of two): the ranks' sums combined by recursive halving, then spread by recursive doubling (Rabenseifner): t = 2 log2(N) alpha + 2 (N - 1) / N S beta - a ring's bytes, a tree's latency; its buckets are independent and in flight together;"
echo "- ordered chain (\`--reduce chain\`, bitwise equal for any N): buckets of k bytes go along the ranks and the sum comes back, pipelined: t = 2 (N - 2 + S / k) (alpha + k beta), with the best bucket k = sqrt(S alpha / ((N - 2) beta)) (at least 4 KB, at most S; \`tg_dist_grads_new\`'s bucket_bytes, 4 MB by default, which suits a few nodes)."
echo
echo "Network parameters as measured here over shared memory are optimistic for real machines; the second table uses alpha = 5 us and beta = 0.1 ns/B (10 GB/s, a 100 Gb/s network) instead."
} > "$md"

model() { # $1 alpha $2 beta $3 plot data file $4 cores per node -> rows
    for m in medium large x4; do
        case $m in medium) P=$Pm; ts=$(echo "$(tps medium ranks)" | awk -v T=64 '{print T * 32 / $1}');;
                   large) P=$Pl; ts=$(echo "$(tps large ranks)" | awk -v T=128 '{print T * 32 / $1}');;
                   x4) P=$Px; ts=$(echo "$(tps large ranks)" | awk -v T=128 -v r="$(awk -v x=$Px -v l=$Pl 'BEGIN {print x / l}')" '{print T * 32 / $1 * r}');; esac
        awk -v a="$1" -v b="$2" -v P="$P" -v ts="$ts" -v m="$m" -v plot="$3" -v cores="${4:-1}" 'BEGIN {
            S = 4 * P; tc = ts / cores   # per step at b = 16
            row = sprintf("| %s | %.1f M | %.0f ms |", m, P / 1e6, tc * 1e3)
            for (N = 2; N <= 1024; N *= 2) {
                ring = 2 * (N - 1) * a + 2 * (N - 1) / N * S * b
                tree = 2 * log(N) / log(2) * a + 2 * (N - 1) / N * S * b
                k = N > 2 ? sqrt(S * a / ((N - 2) * b)) : S
                if (k < 4096) k = 4096
                if (k > S) k = S
                chain = 2 * (N - 2 + S / k) * (a + k * b)
                if (plot != "") printf "%s %d %.4f %.4f %.4f\n", m, N, tc / (tc + ring), tc / (tc + chain), tc / (tc + tree) >> plot
                if (N == 8 || N == 64 || N == 256 || N == 1024) {
                    row = row sprintf(" %.0f%% / %.0f%% / %.0f%% (b >= %d / %d / %d) |", 100 * tc / (tc + tree), 100 * tc / (tc + chain), 100 * tc / (tc + ring), int(9 * tree / (tc / 16)) + 1, int(9 * chain / (tc / 16)) + 1, int(9 * ring / (tc / 16)) + 1)
                }
            }
            print row }'
    done
}
{
echo
echo "Predicted scaling efficiency at b = 16 streams per node, tree / chain / ring, and (in brackets) the streams per node that keep communication under 10% of a step, tree / chain / ring:"
echo
echo "### alpha and beta measured here"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 | N = 1024 |"
echo "|---|---|---|---|---|---|---|"
model "$alpha" "$beta" "$tmp/plot.dat"
echo
echo "### alpha = 5 us, beta = 0.1 ns/B (a 100 Gb/s network)"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 | N = 1024 |"
echo "|---|---|---|---|---|---|---|"
model 5e-6 1e-10 "" 1
echo
echo "### the same network, 32-core nodes (compute 32 times faster per node)"
echo
echo "| model | parameters | t_c at b = 16 | N = 8 | N = 64 | N = 256 | N = 1024 |"
echo "|---|---|---|---|---|---|---|"
model 5e-6 1e-10 "$tmp/plot_net.dat" 32
echo
echo "![predicted scaling efficiency](scaling.svg)"
echo
echo "Reading it: with one core per node a step computes for so long that no scheme costs much; with 32-core nodes the models here become communication-bound at a few hundred nodes unless each node gets more streams (the brackets). The chain pays 2 (N - 2) extra bucket hops per step, even with the best bucket: it falls behind as N grows. The tree sends the ring's bytes in 2 log2(N) messages instead of 2 (N - 1), so by this model it is never slower than the ring - and, like the chain, its results do not depend on N (among powers of two): a run can move between 8 and 64 nodes and still reproduce itself. What the model leaves out: the tree's partners are 1, 2, 4 ... ranks apart, so on a real network its late exchanges cross more switches than a ring's neighbours (place ranks so that near ranks share a node or a switch: mpirun --map-by core, srun's block distribution); and MPI's own all-reduce (\`--reduce ring\`) may pick a better algorithm than a ring for the size at hand."
if [ -f docs/netns.md ]; then
echo
echo "## Over a network path whose bandwidth is set: the model against the clock"
echo
echo "\`scripts/netns_bench.sh\` (as root) makes each rank a node: a network namespace of its own with one veth link to a bridge (a switch), the link's bandwidth set by tc tbf at both ends, and runs mpirun in the first namespace, starting the other ranks through \`ip netns exec\` in place of ssh; the ranks talk TCP (Open MPI's tcp BTL) over the veth addresses only. alpha and beta come from a ping-pong between two namespaces through the same links; the time per step is charlm's training loop (an LSTM of 2 layers of 256, T = 8, B = 4: little compute, 3.5 MB of gradients). The model: t_step = t_c + t_comm, with t_c the compute of a step (the unshaped runs' time per step less their modelled t_comm) and t_comm from the formulas above (the chain with its 4 MB bucket, here one bucket: 2 (N - 1) (alpha + S beta)); no overlap with backward (charlm's gradient is one bucket)."
echo
echo "What the namespaces and shaping allowed here: bandwidth, yes - tbf at 1 Gbit/s and 200 Mbit/s, and one TCP stream gets about 110 and 23 MB/s of it; latency, no - the kernel has no netem, so alpha is what veth, TCP and the MPI stack cost (about 6 us), measured, not set. Every namespace sees the same 2 cores: 4 ranks share them, so t_c at 4 ranks is large and noisy (and on a machine busy with other work it was more so: an earlier run at load 5-7 had the tree 1.28 times the model at 4 ranks and 1 Gbit/s); and every rank must be started with \`--bind-to none\` (each namespace's launcher bound its rank to the same first core, and each message then waited for a time slice: 8 ms ping-pongs). TCP must keep its window between steps (\`net.ipv4.tcp_slow_start_after_idle=0\` in each namespace): by default it starts slowly again after the compute of each step, and a first run so made (\`netns_slowstart.raw\`) took 1.3-1.4 times the model's time per step at 1 Gbit/s on 2 ranks (at 200 Mbit/s within 12%)."
echo
echo "Reading it: at 2 and 4 ranks the model is within 20% for the tree and the chain at both rates (the tree 0.99 and 0.85 of it at 1 Gbit/s, 1.02 and 0.95 at 200 Mbit/s, in the run below), and the tree's sum takes half the chain's (each rank sends half the gradient while it receives the other half, twice, where the chain sends it all one way, then back). At 4 ranks on 2 cores the tree comes out faster than the model, as a rank's sends overlap the other ranks' compute. The unshaped rows show how noisy t_c is on this machine: the model has nothing but t_c there, and they still range from 0.74 to 1.11. \`--reduce ring\` (Open MPI's all-reduce) is not the model's bandwidth-optimal ring for 2 ranks at this size: it takes about the chain's time."
echo
cat docs/netns.md
fi
cat <<'EOT'

## Running on a cluster

Build with the cluster's MPI (`make MPI=1 BUILD=build/mpi`: mpicc must be
on the PATH), and give every node the same binary and the same `--data`
(the ranks compare the build, the flags and a hash of the text before
they start). One rank per node, its threads on the node's cores, is the
layout the model above assumes; several ranks per node also work (each
with fewer threads), and the tree then does its first exchanges inside
the node when neighbouring ranks share it (the default block placement).

A hostfile (Open MPI) lists the nodes and how many ranks each takes:

```
node01 slots=1
node02 slots=1
node03 slots=1
node04 slots=1
```

```sh
# Open MPI: 4 nodes x 1 rank x 32 threads; the tree (the default) needs 1, 2, 4, 8 ... ranks
mpirun --hostfile hosts -np 4 --map-by ppr:1:node:PE=32 --bind-to core \
    -x OMP_NUM_THREADS=32 -x OMP_PROC_BIND=close -x OMP_PLACES=cores \
    build/mpi/charlm train --data corpus.txt --batch 256 --blocks 8 --threads 32 \
    --save run.safetensors
# Slurm: the same with srun (--mpi=pmix or pmi2, as the site's MPI was built)
srun --nodes=4 --ntasks-per-node=1 --cpus-per-task=32 --cpu-bind=cores --mpi=pmix \
    build/mpi/charlm train --data corpus.txt --batch 256 --blocks 8 --threads 32 \
    --save run.safetensors
# resumed later on 8 nodes: the same numbers as if it had stayed on 4 (G = 8)
srun --nodes=8 --ntasks-per-node=1 --cpus-per-task=32 --mpi=pmix \
    build/mpi/charlm train --resume run.safetensors --steps 20000
```

What matters:

- **`--blocks G`** fixes the numbers: keep it when the node count changes
  (a power of two dividing G for the tree; any divisor of G with
  `--reduce chain`). `--batch` must be a multiple of G.
- **Threads per rank**: `--threads` (by default `OMP_NUM_THREADS` if
  set, else the CPUs available, at most 8) should be the cores the rank
  owns (`--cpus-per-task`, `PE=`). More threads than cores makes
  every step wait for the slowest thread; results are the same bits for
  any count. `TG_GOVERNOR=0` keeps the thread count fixed (the governor
  lowers it while other processes keep the CPUs busy, which on a shared
  node is what you want).
- **Binding**: bind each rank to its cores (`--bind-to core` with `PE=`,
  srun `--cpu-bind=cores`) and its threads inside them
  (`OMP_PROC_BIND=close`, `OMP_PLACES=cores`), so that they neither move
  nor share cores with another rank. Several ranks on one node without
  binding information each bind to the same first cores with some
  launchers: `--bind-to none` is the safe choice when unsure (it was
  needed for the namespace experiment above, where every "node" believed
  it had the machine to itself).
- **The network**: Open MPI picks the fastest transport it finds
  (InfiniBand through UCX, else TCP); `--mca btl_tcp_if_include eth0`
  (or a subnet, `10.0.0.0/24`) keeps TCP on the right interface. Rank 0
  writes the checkpoints and logs: give it a path every node can read if
  you resume elsewhere.
- **Faults**: a rank that dies ends the job (mpirun or srun ends the
  others); the last checkpoint stays whole; resume it on any node count
  that keeps G.
EOT
} >> "$md"
gnuplot <<EOF
set terminal svg size 720,420 font "sans,11" background rgb "white"
set output "${SCALING_SVG:-docs/scaling.svg}"
set logscale x 2
set xlabel "nodes N (b = 16 streams per node, 32 cores per node)"
set ylabel "predicted scaling efficiency"
set yrange [0:1.05]
set key bottom left
set title "charlm data-parallel: tree, chain and ring (model: 100 Gb/s, 32-core nodes)"
plot for [m in "medium large x4"] "< grep '^".m." ' $tmp/plot_net.dat" using 2:5 with linespoints title m." tree", \
     for [m in "medium large x4"] "< grep '^".m." ' $tmp/plot_net.dat" using 2:4 with linespoints dashtype 2 title m." chain", \
     for [m in "medium large x4"] "< grep '^".m." ' $tmp/plot_net.dat" using 2:3 with linespoints dashtype 3 title m." ring"
EOF
echo "scaling: wrote $md and ${SCALING_SVG:-docs/scaling.svg}"
