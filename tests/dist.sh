#!/bin/sh
# tests/dist.sh BUILD "MAKE-COMMAND-FOR-THE-MPI-BUILD"
#
# Data-parallel training gives the same bits for any number of ranks:
# examples/dist_train with G = 4 blocks, built without MPI (BUILD/dist_train)
# and with it (BUILD/mpi/dist_train, made by the given command), run as 1
# process and as 1, 2 and 4 ranks (more ranks than cores: --oversubscribe),
# must print identical losses and parameter checksums - with the tree (the
# default; also 8 ranks for G = 8, and over TCP) and with the chain (also
# 3 ranks for G = 6, where the tree falls back to it). Then charlm train:
# 2 and 4 ranks (the tree, over shared memory and over TCP: Open MPI's
# tcp BTL) against one process, checkpoints compared byte for byte, and
# runs resumed on other rank counts; and 2 ranks in two network namespaces
# over a link shaped by tc (scripts/netns_bench.sh --check, skipped with a
# line where namespaces cannot be made). Skipped, with a line saying so,
# where MPI is not installed (scripts/deps.sh installs it).
set -u
root=$(pwd)
build=$(cd "$1" && pwd)
make_mpi=$2
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    echo "dist: SKIPPED - MPI is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    exit 0
fi
$make_mpi "$1/mpi/dist_train" >/dev/null || { echo "dist: FAIL: the MPI build failed"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# as root mpirun wants to be told; sanitizers: MPI's own allocations are
# not ours to report
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=0
fail=0
"$build/dist_train" --steps 12 > "$tmp/single" 2>&1 || { echo "dist: FAIL: dist_train without MPI"; cat "$tmp/single"; exit 1; }
# (2 and 4 ranks with small messages: many buckets, sent while backward runs)
for np in 1 2 4; do
    bucket=0
    [ $np -gt 1 ] && bucket=4096
    timeout 300 mpirun --oversubscribe -np $np "$build/mpi/dist_train" --steps 12 --bucket $bucket \
        > "$tmp/np$np" 2>&1 || { echo "dist: FAIL: mpirun -np $np failed"; cat "$tmp/np$np"; fail=1; continue; }
    # the last line (time, bytes) differs by design
    head -n 13 "$tmp/single" > "$tmp/a"
    head -n 13 "$tmp/np$np" > "$tmp/b"
    if cmp -s "$tmp/a" "$tmp/b"; then
        echo "dist: $np rank(s) x $((4 / np)) block(s) = 1 process x 4 blocks, bit for bit ($(sed -n 13p "$tmp/b"))"
    else
        echo "dist: FAIL: $np ranks differ from one process:"
        diff "$tmp/a" "$tmp/b" | head -5
        fail=1
    fi
done
# dist_train RESULT-NAME WHAT ARGS...: the same losses and parameters as
# one process with the same ARGS (--reduce chain where the tree falls back)
same() {
    name=$1 what=$2; shift 2
    "$build/dist_train" --steps 8 "$@" > "$tmp/$name.1" 2>&1
    timeout 300 mpirun --oversubscribe $np_args "$build/mpi/dist_train" --steps 8 "$@" \
        > "$tmp/$name.n" 2>&1 || { echo "dist: FAIL: $what: mpirun failed"; cat "$tmp/$name.n"; fail=1; return; }
    if head -n 9 "$tmp/$name.1" | cmp -s - "$(head -n 9 "$tmp/$name.n" > "$tmp/$name.h"; echo "$tmp/$name.h")"; then
        echo "dist: $what = 1 process, bit for bit ($(sed -n 10p "$tmp/$name.n" | sed 's/:.*//'))"
    else
        echo "dist: FAIL: $what differs from one process:"; diff "$tmp/$name.1" "$tmp/$name.n" | head -5; fail=1
    fi
}
np_args="-np 8"; same t8 "8 ranks x 1 block, the tree" --blocks 8 --bucket 4096
np_args="-np 4"; same c4 "4 ranks x 2 blocks, the chain" --blocks 8 --bucket 4096 --reduce chain
np_args="-np 3"; same c3 "3 ranks x 2 blocks, --reduce chain" --blocks 6 --B 12 --reduce chain
# the tree on 3 ranks: the chain instead (and it says so)
"$build/dist_train" --steps 8 --blocks 6 --B 12 --reduce chain > "$tmp/f.1" 2>&1
timeout 300 mpirun --oversubscribe -np 3 "$build/mpi/dist_train" --steps 8 --blocks 6 --B 12 > "$tmp/f.n" 2>&1
if ! head -n 9 "$tmp/f.1" | cmp -s - "$(head -n 9 "$tmp/f.n" > "$tmp/f.h"; echo "$tmp/f.h")" ||
        ! grep -q "ranks 3, blocks 6, chain" "$tmp/f.n"; then
    echo "dist: FAIL: the tree on 3 ranks did not fall back to the chain:"; cat "$tmp/f.n"; fail=1
else
    echo "dist: the tree on 3 ranks falls back to the chain (= 1 process with the chain)"
fi
np_args="-np 4 --mca btl tcp,self"; same tcp4 "4 ranks over TCP, the tree" --blocks 4 --bucket 4096
# the ring runs (MPI_Allreduce: its bits are not compared)
timeout 300 mpirun --oversubscribe -np 2 "$build/mpi/dist_train" --steps 8 --reduce ring > "$tmp/ring" 2>&1 &&
    grep -q "ranks 2, blocks 4, ring" "$tmp/ring" && echo "dist: 2 ranks with the ring (MPI_Allreduce) train" ||
    { echo "dist: FAIL: the ring:"; cat "$tmp/ring"; fail=1; }
# the tree and the chain are two computations from G = 4 on (and are seen
# to be), and so are 2 blocks and 4
"$build/dist_train" --steps 12 --reduce chain > "$tmp/chain" 2>&1
if head -n 12 "$tmp/chain" | cmp -s - "$tmp/a"; then
    echo "dist: FAIL: the chain gave the bits of the tree: the comparison proves nothing"
    fail=1
fi
# the blocks matter: 2 blocks is another computation (and is seen to be)
"$build/dist_train" --steps 12 --blocks 2 > "$tmp/g2" 2>&1
if head -n 12 "$tmp/g2" | cmp -s - "$tmp/a"; then
    echo "dist: FAIL: 2 blocks gave the bits of 4: the comparison proves nothing"
    fail=1
fi
# a rank count that does not divide the blocks is refused, clearly
if timeout 120 mpirun --oversubscribe -np 3 "$build/mpi/dist_train" --steps 1 > "$tmp/np3" 2>&1; then
    echo "dist: FAIL: 3 ranks for 4 blocks were accepted"; fail=1
elif ! grep -q "the ranks G" "$tmp/np3"; then
    echo "dist: FAIL: 3 ranks for 4 blocks: no clear message"; cat "$tmp/np3"; fail=1
fi

# ---- charlm train over MPI ----------------------------------------------
charlm1=$build/charlm
charlmN=$build/mpi/charlm
$make_mpi "$1/mpi/charlm" >/dev/null || { echo "dist: FAIL: the MPI build of charlm failed"; exit 1; }
cd "$tmp"
i=0
while [ $i -lt 300 ]; do
    echo "line $i: the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs."
    i=$((i + 1))
done > corpus.txt
F="--data corpus.txt --hidden 24 --embed 8 --layers 2 --seq 12 --batch 8 --eval-every 10 --threads 1 --blocks 4 --lr 0.01"
# the numbers of a checkpoint: its tensors, without the header (which
# holds the elapsed time and the checksum over it)
body() {
    n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
    tail -c +$((9 + n)) "$1"
}
# the losses of a JSON log: train_loss, val_loss, grad_norm
losses() { sed 's/"tokens_per_s"[^,]*,//; s/"elapsed_s"[^,]*,//' "$1"; }
"$charlm1" train $F --steps 30 --save one.st --log one.jsonl >/dev/null 2>one.err ||
    { echo "dist: FAIL: charlm train (1 process)"; cat one.err; exit 1; }
# (shared memory, then TCP: Open MPI's tcp BTL, the path between machines,
# here over loopback)
for np in 2 4 4tcp; do
    how="over shared memory" mca=
    [ $np = 4tcp ] && how="over TCP" mca="--mca btl tcp,self"
    # shellcheck disable=SC2086
    if ! timeout 300 mpirun --oversubscribe $mca -np ${np%tcp} "$charlmN" train $F --reduce tree \
            --steps 30 --save n$np.st --log n$np.jsonl >/dev/null 2>n$np.err; then
        echo "dist: FAIL: mpirun -np $np charlm train"; cat n$np.err; fail=1; continue
    fi
    losses n$np.jsonl > n$np.l
    losses one.jsonl > one.l
    if cmp -s one.l n$np.l && body one.st | cmp -s - "$(body n$np.st > n$np.body; echo n$np.body)"; then
        echo "dist: charlm train --reduce tree, ${np%tcp} ranks $how = 1 process (G = 4): same losses, same checkpoint"
    else
        echo "dist: FAIL: charlm train on $np ranks differs from 1 process"; diff one.l n$np.l | head -4; fail=1
    fi
done
# resumed with another number of ranks: as if never stopped
timeout 300 mpirun --oversubscribe -np 2 "$charlmN" train $F --steps 20 --save r.st >/dev/null 2>&1 &&
    "$charlm1" train --resume r.st --steps 30 >/dev/null 2>&1 &&
    body r.st | cmp -s - "$(body one.st > one.body; echo one.body)" &&
    echo "dist: 2 ranks to step 20, then 1 process to 30 = 1 process to 30" ||
    { echo "dist: FAIL: a 2-rank checkpoint resumed on 1 process differs"; fail=1; }
"$charlm1" train $F --steps 20 --save s.st >/dev/null 2>&1 &&
    timeout 300 mpirun --oversubscribe -np 4 "$charlmN" train --resume s.st --steps 30 >/dev/null 2>&1 &&
    body s.st | cmp -s - one.body &&
    echo "dist: 1 process to step 20, then 4 ranks to 30 = 1 process to 30" ||
    { echo "dist: FAIL: a 1-process checkpoint resumed on 4 ranks differs"; fail=1; }
timeout 300 mpirun --oversubscribe -np 4 "$charlmN" train $F --steps 20 --save q.st >/dev/null 2>&1 &&
    timeout 300 mpirun --oversubscribe --mca btl tcp,self -np 2 "$charlmN" train --resume q.st --steps 30 >/dev/null 2>&1 &&
    body q.st | cmp -s - one.body &&
    echo "dist: 4 ranks to step 20, then 2 ranks over TCP to 30 = 1 process to 30" ||
    { echo "dist: FAIL: a 4-rank checkpoint resumed on 2 ranks over TCP differs"; fail=1; }
# one rank killed: the others end soon, and the last checkpoint is whole
timeout 120 mpirun --oversubscribe -np 2 "$charlmN" train $F --steps 100000000 \
    --eval-every 20 --save k.st >/dev/null 2>k.err &
job=$!
waited=0
while [ ! -f k.st ] && [ $waited -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
sleep 1
victim=$(pgrep -f "$charlmN train" | tail -n 1)
[ -n "$victim" ] && kill -9 "$victim"
start=$(date +%s)
wait $job
took=$(( $(date +%s) - start ))
if [ -z "$victim" ] || [ $took -gt 60 ]; then
    echo "dist: FAIL: after kill -9 of one rank the job took $took s to end"; fail=1
elif ! "$charlm1" eval --load k.st >/dev/null 2>&1; then
    echo "dist: FAIL: the checkpoint after kill -9 of one rank does not load"; fail=1
elif ! grep -q "rank .* of 2): stopping on a signal" k.err; then
    echo "dist: FAIL: after kill -9 of one rank the other said nothing:"; cat k.err; fail=1
else
    echo "dist: kill -9 of one rank: the job ended within $took s, the other rank said why in one line, the last checkpoint loads"
fi
# Ctrl-C (SIGINT to mpirun): every rank stops at the same step after a save
# (this build's mpirun only: other checkouts may be running this test too)
rm -f i.st
timeout 120 mpirun --oversubscribe -np 2 "$charlmN" train $F --steps 100000000 \
    --eval-every 5 --save i.st >i.out 2>i.err &
job=$!
waited=0 # until both ranks have trained together (their handlers are set)
while ! grep -q "^step 5/" i.out 2>/dev/null && [ $waited -lt 600 ]; do
    sleep 0.1; waited=$((waited + 1))
done
pkill -INT -f "^mpirun .* $charlmN train .*--save i.st" || kill -INT $job
wait $job
if grep -q "interrupted at step" i.err && "$charlm1" eval --load i.st >/dev/null 2>&1; then
    echo "dist: Ctrl-C: $(grep -o 'interrupted at step [0-9]*' i.err), saved, and the checkpoint loads"
else
    echo "dist: FAIL: Ctrl-C under mpirun:"; cat i.err; fail=1
fi
# a diverging run stops every rank with the same message, nothing saved
if timeout 120 mpirun --oversubscribe -np 2 "$charlmN" train $F --steps 50 \
        --lr 1e9 --clip 0 --save dv.st >/dev/null 2>dv.err; then
    echo "dist: FAIL: a diverging run under mpirun succeeded"; fail=1
elif ! grep -q "loss is\|gradient norm is\|no longer finite" dv.err; then
    echo "dist: FAIL: a diverging run under mpirun gave no clear message:"; cat dv.err; fail=1
else
    echo "dist: a diverging run stops every rank: $(grep -o 'the [a-z]* loss is [^;]*\|gradient norm is [a-z]*\|no longer finite' dv.err | head -n 1)"
fi
# a real network path: two namespaces, TCP over a veth link at 200 Mbit/s
NETNS_BUILD=$build sh "$root/scripts/netns_bench.sh" --check > "$tmp/netns" 2>&1 ||
    { echo "dist: FAIL: over two network namespaces:"; fail=1; }
grep -v "plm:rsh: Warning" "$tmp/netns" | sed 's/^netns_bench: /dist: /'
exit $fail
