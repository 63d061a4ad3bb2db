#!/bin/sh
# scripts/netns_bench.sh - data-parallel training over a real network path
# with a bandwidth we set: the alpha-beta model of docs/scaling.md against
# the time per step measured.
#
#   make && make MPI=1 BUILD=build/mpi build/mpi/charlm build/mpi/dist_train
#   sh scripts/netns_bench.sh [REPEATS [RATES]]   (as root; run it alone)
#       REPEATS: runs per figure, the median is kept (default 3); 0: no
#                new runs, the table again from docs/netns.raw
#       RATES: tc rates, "none" for an unshaped link (default
#              "none 1gbit 200mbit"; "none" must be there: it gives t_c)
#   writes docs/netns.raw (the measurements) and docs/netns.md (the table
#   that scripts/scaling.sh puts into docs/scaling.md; NETNS_RAW and
#   NETNS_MD write elsewhere)
#   sh scripts/netns_bench.sh --check             (one short run over the
#       namespaces: the tree on 2 ranks equals 1 process, bit for bit)
#
# Each rank is a "node" in a network namespace of its own (ip netns),
# joined to the others by a veth pair whose other end is on a bridge in
# the root namespace: a non-blocking switch with one link per node. The
# bandwidth of a link is set by tc tbf at both ends' egress (the kernel
# here has no netem, so latency is not set: it is measured). mpirun runs
# in the first namespace and starts the ranks of the others through a
# launcher (plm_rsh_agent) that is `ip netns exec` instead of ssh; the
# ranks talk over TCP (Open MPI's tcp BTL) on the veth addresses only.
#
# For each rate: alpha and beta from a ping-pong between two namespaces
# (8 bytes; 16 MiB), and the time per step of charlm training (an LSTM of
# 2 layers of 256, T = 8, B = 4 in N blocks: the time of the training
# loop from its log, the difference of runs of S1 and S2 steps, so that
# the final evaluation cancels) on 2 ranks (tree, chain, ring) and 4
# ranks (tree, chain). The model predicts
#     t_step(rate) = t_c + t_comm(alpha, beta)
# with t_c the unshaped run's time less its own modelled t_comm (no
# overlap assumed, as in docs/scaling.md), and t_comm per bucket:
#     tree:  2 log2(N) alpha + 2 (N - 1) / N s beta
#     chain: 2 (N - 1) (alpha + s beta) for one bucket; buckets pipelined:
#            2 (N - 2 + S / k) (alpha + k beta)
#     ring:  as the tree (Open MPI's all-reduce for 2 ranks)
# summed over the buckets (charlm's 4 MB).
set -eu
cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
reps=${1:-3}
rates=${2:-"none 1gbit 200mbit"}
raw=${NETNS_RAW:-docs/netns.raw}
md=${NETNS_MD:-docs/netns.md}
build=${NETNS_BUILD:-build}
one=$build/charlm
mpi=$build/mpi/charlm
dt=$build/mpi/dist_train
skip() { echo "netns_bench: SKIPPED - $*"; exit 0; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
if [ "$check" = 1 ] || [ "$reps" -gt 0 ]; then
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
for c in ip tc mpirun; do
    command -v $c >/dev/null 2>&1 || skip "$c is not installed"
done
for b in "$one" "$mpi" "$dt"; do
    [ -x "$b" ] || { echo "netns_bench: $b is missing (see the header)"; exit 1; }
done
one=$(cd "$(dirname "$one")" && pwd)/charlm
mpi=$(cd "$(dirname "$mpi")" && pwd)/charlm
dt=$(cd "$(dirname "$dt")" && pwd)/dist_train
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1 TG_GOVERNOR=0
tmp=$(mktemp -d)
# names of our own: other runs of this script may be using theirs
tag=$(( $$ % 10000 ))
br=tgbr$tag
NN=4
cleanup() {
    for i in $(seq $NN); do ip netns del tgns$tag-$i 2>/dev/null || true; done
    ip link del "$br" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ip link add "$br" type bridge 2>/dev/null || skip "cannot make a bridge (ip link add type bridge)"
ip link set "$br" up
for i in $(seq $NN); do
    ns=tgns$tag-$i
    ip netns add $ns 2>/dev/null || skip "cannot make a network namespace (ip netns add)"
    ip link add tgv$tag-$i type veth peer name tgb$tag-$i ||
        skip "cannot make a veth pair"
    ip link set tgv$tag-$i netns $ns
    ip -n $ns addr add 10.78.0.$i/24 dev tgv$tag-$i
    ip -n $ns link set tgv$tag-$i up
    ip -n $ns link set lo up
    # TCP keeps its congestion window between a step's messages (by
    # default it starts slowly again after an idle moment - here the
    # compute between two sums - and a few MB never reach the link's rate)
    ip netns exec $ns sysctl -qw net.ipv4.tcp_slow_start_after_idle=0 || true
    ip link set tgb$tag-$i master "$br"
    ip link set tgb$tag-$i up
done
# mpirun's launcher: runs the command in the namespace that has the
# address, with a temporary directory of its own (every "node" has the same
# host name and /tmp, and Open MPI's session directories would collide)
cat > "$tmp/agent" <<EOF
#!/bin/sh
host=\$1; shift
for ns in \$(ip netns list | awk '{print \$1}'); do
    if ip -n "\$ns" -4 addr show | grep -q "inet \$host/"; then
        mkdir -p "$tmp/\$ns"
        exec ip netns exec "\$ns" env TMPDIR="$tmp/\$ns" sh -c "\$*"
    fi
done
echo "netns agent: no namespace has the address \$host" >&2; exit 1
EOF
chmod +x "$tmp/agent"
for i in $(seq $NN); do echo "10.78.0.$i slots=1"; done > "$tmp/hosts"
# (--bind-to none: each namespace's launcher would bind its rank to the
# same first core)
mpi_ns() { # NP ARGS...: mpirun from the first namespace, one rank a node
    np=$1; shift
    timeout 600 ip netns exec tgns$tag-1 mpirun --bind-to none \
        --hostfile "$tmp/hosts" --map-by node -np "$np" \
        --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self \
        --mca btl_tcp_if_include 10.78.0.0/24 \
        --mca oob_tcp_if_include 10.78.0.0/24 "$@"
}
shape() { # RATE: tbf on every link's two ends, or none
    for i in $(seq $NN); do
        if [ "$1" = none ]; then
            ip -n tgns$tag-$i link set tgv$tag-$i up # (nothing to remove)
            ip netns exec tgns$tag-$i tc qdisc del dev tgv$tag-$i root 2>/dev/null || true
            tc qdisc del dev tgb$tag-$i root 2>/dev/null || true
        else
            # burst: 1 ms at the rate, at least 64 KB (a TSO segment)
            ip netns exec tgns$tag-$i tc qdisc replace dev tgv$tag-$i root \
                tbf rate "$1" burst 128kb latency 200ms
            tc qdisc replace dev tgb$tag-$i root tbf rate "$1" burst 128kb latency 200ms
        fi
    done
}

if [ -d /usr/share/games/fortunes ]; then
    cat /usr/share/games/fortunes/fortunes /usr/share/games/fortunes/literature 2>/dev/null | head -c 60000 > "$tmp/corpus.txt"
else
    yes "the quick brown fox jumps over the lazy dog." | head -c 60000 > "$tmp/corpus.txt"
fi
# little compute, many bytes: a loaded machine's noise matters less where
# the link sets the pace (and the evaluation at the end, of 3 KB, is short)
T=8 B=4
F="--data $tmp/corpus.txt --hidden 256 --embed 64 --layers 2 --seq $T --batch $B --threads 1 --eval-every 100000"

body() { n=$(od -An -t u8 -N 8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1"; }
if [ $check = 1 ]; then
    C="--data $tmp/corpus.txt --hidden 24 --embed 8 --layers 2 --seq 12 --batch 8 --blocks 4 --threads 1 --steps 6 --eval-every 3"
    shape 200mbit
    "$one" train $C --save "$tmp/one.st" >/dev/null 2>&1 || { echo "netns_bench: FAIL: 1 process"; exit 1; }
    mpi_ns 2 "$mpi" train $C --reduce tree --save "$tmp/two.st" >/dev/null 2>"$tmp/err" ||
        { echo "netns_bench: FAIL: 2 ranks over the namespaces:"; cat "$tmp/err"; exit 1; }
    if body "$tmp/one.st" | cmp -s - "$(body "$tmp/two.st" > "$tmp/two.body"; echo "$tmp/two.body")"; then
        echo "netns_bench: 2 ranks in 2 network namespaces over TCP at 200 Mbit/s (tbf) = 1 process, bit for bit"
        exit 0
    fi
    echo "netns_bench: FAIL: 2 ranks over the namespaces differ from 1 process"; exit 1
fi

timed() { # STEPS NP ARGS...: seconds of one run's training loop (from
    # its log: tokens / tokens_per_s, so that launching is left out)
    steps=$1 np=$2; shift 2
    rm -f "$tmp/log"
    mpi_ns "$np" "$mpi" train $F "$@" --steps "$steps" --save "$tmp/x.st" \
        --overwrite --log "$tmp/log" > /dev/null 2> "$tmp/err" ||
        { echo "netns_bench: a run failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    tail -n 1 "$tmp/log" | sed 's/.*"tokens_per_s": \([0-9.e+-]*\).*/\1/' |
        awk -v n="$steps" -v tb=$((T * B)) '{print n * tb / $1}'
}
S1=${NETNS_S1:-5} S2=${NETNS_S2:-25}
P=$("$one" train $F --steps 1 --save "$tmp/p.st" 2>&1 >/dev/null | sed -n 's/.*(\([0-9]*\) parameters.*/\1/p')
echo "meta date $(date -u +%Y-%m-%d) load $(cut -d' ' -f1 /proc/loadavg) parameters $P reps $reps rates $rates" > "$raw"
for rate in $rates; do
    shape "$rate"
    pp=$(mpi_ns 2 "$dt" --pingpong) ||
        { echo "netns_bench: the ping-pong failed at $rate" >&2; exit 1; }
    echo "$pp" | sed "s/^/$rate /" >> "$raw"
    for cfg in "2 tree" "2 chain" "2 ring" "4 tree" "4 chain"; do
        set -- $cfg
        np=$1 how=$2
        for r in $(seq "$reps"); do
            t1=$(timed $S1 "$np" --blocks "$np" --reduce "$how")
            t2=$(timed $S2 "$np" --blocks "$np" --reduce "$how")
            echo "$rate step $np $how $(awk -v a="$t1" -v b="$t2" -v n=$((S2 - S1)) 'BEGIN {print (b - a) / n}')" >> "$raw"
        done
    done
done
echo "meta end load $(cut -d' ' -f1 /proc/loadavg)" >> "$raw"

fi

# ---- the model against the measurements --------------------------------
[ -f "$raw" ] || { echo "netns_bench: no $raw: run it with REPEATS > 0 first"; exit 1; }
step_of() { grep "^$1 step $2 $3 " "$raw" | awk '{print $5}' | median; }
# alpha: the least of the 8 to 4096-byte times of every setting (each a
# median of 101 round trips; tbf delays a small message only when its
# bucket is empty, so the link's latency is the same at every rate; on a
# machine shared with other work a rank that waits is often not running,
# and a whole size then takes a scheduler's time slice, 6 ms here);
# beta: the 16 MiB time of the setting, less alpha, per byte
a0=$(grep "^[^ ]* pingpong bytes \(8\|64\|512\|4096\) " "$raw" | awk '{print $6}' | sort -g | head -n 1)
ab_of() {
    a=$a0
    grep "^$1 pingpong bytes 16777216 " "$raw" |
        awk -v a="$a" '{print a, ($6 - a) / 16777216}'
}
P=$(awk '/^meta date/ {print $7}' "$raw")
reps=$(awk '/^meta date/ {print $9}' "$raw")
rates=$(sed -n 's/^meta date .* rates //p' "$raw")
comm() { # NP HOW ALPHA BETA: modelled seconds of one step's sum
    awk -v N="$1" -v how="$2" -v a="$3" -v b="$4" -v P="$P" 'BEGIN {
        S = 4 * P; K = 4194304; k = S < K ? S : K
        if (how == "chain") { print 2 * (N - 2 + S / k) * (a + k * b); exit }
        t = 0
        for (lo = 0; lo < S; lo += K) {
            s = S - lo < K ? S - lo : K
            t += 2 * log(N) / log(2) * a + 2 * (N - 1) / N * s * b
        }
        print t }'
}
ab0=$(ab_of none)
{
echo "Made by \`sh scripts/netns_bench.sh $reps \"$rates\"\` on $(awk '/^meta date/ {d = $3; l0 = $5} /^meta end/ {l1 = $4} END {print d ", load average " l0 " at the start and " l1 " at the end"}' "$raw"), $(getconf _NPROCESSORS_ONLN) vCPUs (Open MPI $(mpirun --version 2>/dev/null | head -1 | awk '{print $NF}'), tcp BTL over veth; $P parameters, S = $((4 * P)) bytes). Medians of $reps. t_c, the compute of a step, is the same for the three sums: it is taken from all the unshaped runs with N ranks (their time less their modelled t_comm; the median)."
echo
echo "| link (tbf) | alpha, us | beta, ns/B (MB/s) | ranks | sum | t_c, ms | model t_comm, ms | predicted ms/step | measured ms/step | measured / predicted |"
echo "|---|---|---|---|---|---|---|---|---|---|"
tc_of() { # NP: the compute of a step with NP ranks
    for how in tree chain ring; do
        c0=$(comm "$1" $how $ab0)
        grep "^none step $1 $how " "$raw" | awk -v c="$c0" '{print $5 - c}'
    done | median
}
for rate in $rates; do
    ab=$(ab_of "$rate")
    for cfg in "2 tree" "2 chain" "2 ring" "4 tree" "4 chain"; do
        set -- $cfg
        m=$(step_of "$rate" "$1" "$2")
        [ -n "$m" ] || continue
        c=$(comm "$1" "$2" $ab)
        echo "$rate $ab $1 $2 $(tc_of "$1") $c $m" | awk '{
            pred = $6 + $7
            printf "| %s | %.1f | %.2f (%.0f) | %d | %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n",
                $1, $2 * 1e6, $3 * 1e9, 1e-6 / $3, $4, $5, $6 * 1e3, $7 * 1e3,
                pred * 1e3, $8 * 1e3, $8 / pred }'
    done
done
} > "$md"
cat "$md"
