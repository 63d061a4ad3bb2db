#!/bin/sh
# tests/dist.sh BUILD "MAKE-COMMAND-FOR-THE-MPI-BUILD"
#
# Data-parallel training gives the same bits for any number of ranks:
# examples/dist_train with G = 4 blocks, built without MPI (BUILD/dist_train)
# and with it (BUILD/mpi/dist_train, made by the given command), run as 1
# process and as 1, 2 and 4 ranks (more ranks than cores: --oversubscribe),
# must print identical losses and parameter checksums. Skipped, with a line
# saying so, where MPI is not installed (scripts/deps.sh installs it).
set -u
build=$1
make_mpi=$2
if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    echo "dist: SKIPPED - MPI is not installed (apt-get install openmpi-bin libopenmpi-dev)"
    exit 0
fi
$make_mpi "$build/mpi/dist_train" >/dev/null || { echo "dist: FAIL: the MPI build failed"; exit 1; }
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
exit $fail
