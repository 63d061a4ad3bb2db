#!/bin/sh
# tests/mpi_faults.sh BUILD "MAKE-COMMAND-FOR-THE-MPI-BUILD"
#
# MPI runs of charlm train whose ranks disagree, or fail alone, end every
# rank quickly with one clear line and a non-zero exit - never a hang, a
# crash or a silent difference: --data missing on one rank, another
# --hidden, vocabulary, text, --blocks or --seq on one rank, another
# --resume checkpoint, a bad flag or another command on one rank, the
# build without MPI under mpirun, a crash of one rank while training, a
# rank killed while the other waits for it in the tree reduction.
# Each case runs under `timeout`, so that a hang fails it, and must name
# the rank and what differs. Two ranks that agree still train (and
# tests/dist.sh checks their numbers). Skipped, with a line saying so,
# where Open MPI is not installed (scripts/deps.sh installs it).
set -u
build=$(cd "$1" && pwd)
make_mpi=$2
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1 ||
    ! mpirun --version 2>/dev/null | grep -q "Open MPI"; then
    echo "mpi_faults: SKIPPED - Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    exit 0
fi
$make_mpi "$1/mpi/charlm" >/dev/null || { echo "mpi_faults: FAIL: the MPI build of charlm failed"; exit 1; }
charlm1=$build/charlm
charlmN=$build/mpi/charlm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
# as root mpirun wants to be told; -q: mpirun's own notices off, so that
# what is left is charlm's; sanitizers: MPI's own allocations are not ours
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=0
LIMIT=${MPI_FAULTS_LIMIT:-60} # seconds a case may take before it is a hang
fail=0

i=0
while [ $i -lt 300 ]; do
    echo "line $i: the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs."
    i=$((i + 1))
done > corpus.txt
tr q Q < corpus.txt > vocab2.txt           # another vocabulary
sed 's/quick/kciuq/' corpus.txt > text2.txt # the same one, other text
F="--hidden 24 --embed 8 --layers 2 --seq 12 --batch 8 --eval-every 10 --threads 1 --blocks 4 --lr 0.01"
"$charlm1" train --data corpus.txt $F --steps 10 --save r10.st >/dev/null 2>&1 &&
    "$charlm1" train --resume r10.st --steps 20 --save r20.st >/dev/null 2>&1 ||
    { echo "mpi_faults: FAIL: cannot make the checkpoints to resume"; exit 1; }

now() { date +%s.%N; }
# case NAME PATTERN MPIRUN-ARGS...: the job must end within LIMIT seconds,
# with a non-zero status, and its stderr must hold exactly one line
# matching PATTERN (grep -E) and no other line from charlm
case_() {
    name=$1 pattern=$2
    shift 2
    t0=$(now)
    timeout "$LIMIT" mpirun -q --oversubscribe "$@" > out 2> err
    rc=$?
    took=$(echo "$(now) $t0" | awk '{ printf "%.1f", $1 - $2 }')
    lines=$(grep -c '^charlm\|^tapegrad' err)
    if [ $rc = 124 ]; then
        echo "mpi_faults: FAIL: $name: still running after $LIMIT s (a hang)"; cat err; fail=1
    elif [ $rc = 0 ]; then
        echo "mpi_faults: FAIL: $name: exit status 0"; cat err; fail=1
    elif [ "$lines" != 1 ] || ! grep -Eq "$pattern" err; then
        echo "mpi_faults: FAIL: $name: not one line matching '$pattern':"; cat err; fail=1
    else
        echo "mpi_faults: $name: status $rc after $took s: $(grep '^charlm\|^tapegrad' err)"
    fi
}
one() { echo -np 1 "$charlmN" train; } # the first rank, as usual
case_ "--data missing on one rank" "rank 1 of 2: cannot read nothere.txt" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data nothere.txt $F --save a.st
case_ "--hidden 32 on one rank" "ranks differ in --hidden: 32 on rank 1 of 2, 24 on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data corpus.txt $F --hidden 32 --save a.st
case_ "another vocabulary on one rank" "ranks differ in vocabulary: .* on rank 1 of 2, .* on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data vocab2.txt $F --save a.st
case_ "the same vocabulary, other text on one rank" "ranks differ in the text of --data: .* on rank 1 of 2, .* on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data text2.txt $F --save a.st
case_ "another --blocks on one rank" "ranks differ in --blocks: 2 on rank 1 of 2, 4 on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data corpus.txt $F --blocks 2 --save a.st
case_ "another --seq on one rank" "ranks differ in --seq: 10 on rank 1 of 2, 12 on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data corpus.txt $F --seq 10 --save a.st
case_ "another --resume checkpoint on one rank" "ranks differ in the --resume checkpoint: step 20, checksum [0-9a-f]+ on rank 1 of 2, step 10, checksum [0-9a-f]+ on rank 0" \
    $(one) --resume r10.st --steps 30 --save a.st : -np 1 "$charlmN" train --resume r20.st --steps 30 --save a.st
case_ "an unknown flag on one rank" "rank 1 of 2: unknown option '--hiden'" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" train --data corpus.txt $F --hiden 32 --save a.st
case_ "another command on one rank" "ranks differ in the command: charlm sample on rank 1 of 2, charlm train on rank 0" \
    $(one) --data corpus.txt $F --save a.st : -np 1 "$charlmN" sample --load r10.st
case_ "the build without MPI under mpirun -np 2" "built without MPI.*make MPI=1" \
    -np 2 "$charlm1" train --data corpus.txt $F --save a.st
[ -e a.st ] && { echo "mpi_faults: FAIL: a refused run wrote a.st"; fail=1; }

# a crash of one rank while training: one line from it (async-signal-safe,
# no backtrace that could wait for malloc), and the job ends
timeout "$LIMIT" mpirun -q --oversubscribe -np 2 "$charlmN" train --data corpus.txt $F \
    --steps 100000000 --eval-every 20 --save k.st >/dev/null 2>k.err &
job=$!
waited=0
while [ ! -f k.st ] && [ $waited -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
sleep 0.5
victim=$(pgrep -f "$charlmN train" | tail -n 1)
[ -n "$victim" ] && kill -SEGV "$victim"
t0=$(now)
wait $job
rc=$?
took=$(echo "$(now) $t0" | awk '{ printf "%.1f", $1 - $2 }')
if [ -z "$victim" ] || [ $rc = 124 ] || [ $rc = 0 ]; then
    echo "mpi_faults: FAIL: a crash of one rank: status $rc after $took s"; cat k.err; fail=1
elif ! grep -q "^tapegrad: rank [01] of 2: SIGSEGV" k.err; then
    echo "mpi_faults: FAIL: a crash of one rank: no line from it:"; cat k.err; fail=1
else
    echo "mpi_faults: a crash of one rank while training: status $rc after $took s: $(grep '^tapegrad' k.err)"
fi

# a rank killed during the tree reduction: rank 1 is stopped (SIGSTOP), so
# that rank 0 finishes its backward and waits for rank 1's halves in
# tg_dist_grads_end - checked in its stack where gdb is installed (else
# likely: the rest of a step is compute), rank 1 let go and stopped
# again until it is so - then rank 1 is killed. The job must end, and the
# last checkpoint load.
rank_pid() { # RANK: the pid of that rank of this build's charlm train
    for p in $(pgrep -f "$charlmN train"); do
        tr '\0' '\n' < /proc/$p/environ 2>/dev/null |
            grep -q "^OMPI_COMM_WORLD_RANK=$1\$" && echo $p
    done | head -n 1
}
timeout "$LIMIT" mpirun -q --oversubscribe -np 2 "$charlmN" train --data corpus.txt $F \
    --reduce tree --steps 100000000 --eval-every 20 --save t.st >/dev/null 2>t.err &
job=$!
waited=0
while [ ! -f t.st ] && [ $waited -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
sleep 0.5
r0=$(rank_pid 0) r1=$(rank_pid 1) where="not checked (no gdb)"
if [ -n "$r0" ] && [ -n "$r1" ]; then
    kill -STOP "$r1"
    if command -v gdb >/dev/null 2>&1; then
        where="not reached in 10 tries"
        for try in 1 2 3 4 5 6 7 8 9 10; do
            sleep 0.3
            if timeout 30 gdb -p "$r0" -batch -ex bt 2>/dev/null | grep -q "tg_dist_grads_end"; then
                where="rank 0 was in tg_dist_grads_end (gdb, try $try)"; break
            fi
            kill -CONT "$r1"; sleep 0.$try; kill -STOP "$r1"
        done
    fi
    kill -9 "$r1"
fi
t0=$(now)
wait $job
rc=$?
took=$(echo "$(now) $t0" | awk '{ printf "%.1f", $1 - $2 }')
if [ -z "$r1" ] || [ $rc = 124 ] || [ $rc = 0 ]; then
    echo "mpi_faults: FAIL: a rank killed during the tree reduction: status $rc after $took s"; cat t.err; fail=1
elif [ "${where#not reached}" != "$where" ]; then
    echo "mpi_faults: FAIL: a rank killed during the tree reduction: $where"; fail=1
elif ! "$charlm1" eval --load t.st >/dev/null 2>&1; then
    echo "mpi_faults: FAIL: after a rank was killed during the tree reduction the checkpoint does not load"; fail=1
else
    echo "mpi_faults: a rank killed during the tree reduction ($where): status $rc after $took s, the last checkpoint loads"
fi

# the ranks agree: they train
if timeout "$LIMIT" mpirun -q --oversubscribe -np 2 "$charlmN" train --data corpus.txt $F \
        --steps 5 --save ok.st >/dev/null 2>ok.err && [ -s ok.st ]; then
    echo "mpi_faults: 2 ranks that agree train"
else
    echo "mpi_faults: FAIL: 2 ranks that agree:"; cat ok.err; fail=1
fi
exit $fail
