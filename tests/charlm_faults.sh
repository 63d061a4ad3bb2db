#!/bin/sh
# tests/charlm_faults.sh - charlm train when the world around it does not
# behave (issue 19): no write may be lost in silence. Each case gives one
# clear line and a known exit status, or works and says what it did.
#
#   sh tests/charlm_faults.sh build/charlm
#
# Checks: a signal during the final evaluation; --log on a full disk, to
# /dev/full and into a closed pipe; another run's checkpoint put at --save
# during a run; --resume with flags that change the numbers, or may not
# change; --init-from with another vocabulary (mapped by character).
# Prints each failure and exits non-zero if there was any.
set -u
SRCDIR=$(cd "$(dirname "$0")" && pwd)
. "$SRCDIR/lib.sh"
tg_test_start charlm_faults "${1:-build/charlm}"

awk 'BEGIN { for (i = 1; i <= 300; i++)
    printf "%d: the quick brown fox jumps over the lazy dog - café, 5 €\n", i }' > corpus.txt
M="--hidden 16 --embed 8 --seq 8 --batch 4 --threads 1"

# wait_for FILE PATTERN: until a line of FILE matches (60 s at most)
wait_for() {
    i=0
    while ! grep -q -- "$2" "$1" 2>/dev/null; do
        [ $i -ge 1200 ] && return 1
        sleep 0.05; i=$((i + 1))
    done
}

# ---- a signal during the final evaluation: the interrupted line and status --
# Two steps take milliseconds; the one evaluation, at the end, on 0.8 MB
# held out, takes seconds: the signal, sent once the run has said that it
# started, comes during it (or, on a very slow start, during a step: the
# same line and status either way).
awk 'BEGIN { for (i = 0; i < 20000; i++) print "the quick brown fox jumps over the lazy dog" }' > long.txt
for sig in INT:130 TERM:143; do
    want=${sig#*:} sig=${sig%:*}
    rm -f sig.err # (wait_for must not see the last run's lines)
    "$BIN" train --data long.txt $M --val-frac 0.9 --steps 2 --eval-every 1000 \
        --save sig.st --overwrite > sig.out 2> sig.err &
    pid=$!
    wait_for sig.err '^training' || fail "SIG$sig: the run did not start: $(cat sig.err)"
    kill -$sig $pid
    wait $pid
    rc=$?
    [ $rc = $want ] && ok || fail "SIG$sig during the final evaluation: status $rc, not $want: $(cat sig.err)"
    grep -q "^charlm train: interrupted at step [12]; saved sig.st" sig.err && ok ||
        fail "SIG$sig during the final evaluation: no interrupted line: $(cat sig.err)"
    grep -q '^done:' sig.err && fail "SIG$sig: the run said it was done: $(cat sig.err)" || ok
    "$BIN" eval --load sig.st > sig.eval 2>&1 && ok ||
        fail "SIG$sig: the checkpoint does not load: $(cat sig.eval)"
done

# ---- --log that cannot be written: one line, the checkpoint saved, status 1 --
# A full disk, made with the file size limit (SIGXFSZ ignored, a write past
# the limit fails with EFBIG): the log is filled to 100 bytes short of the
# limit, so the first JSON line is written in part - and cut off again.
(trap '' XFSZ; ulimit -f 512; head -c 10000000 /dev/zero > limit.probe) 2>/dev/null
lim=$(wc -c < limit.probe)
{ head -c $((lim - 101)) /dev/zero | tr '\0' x; echo; } > full.log
(trap '' XFSZ; ulimit -f 512
 exec "$BIN" train --data corpus.txt $M --steps 10 --eval-every 5 --save full.st \
     --log full.log > full.out 2> full.err)
rc=$?
[ $rc = 1 ] && ok || fail "--log on a full disk: status $rc, not 1: $(cat full.err)"
grep -q "^charlm train: cannot write --log full.log: File too large (the line of step 5 is not in it); stopped after saving full.st: once the log can be written, continue with: charlm train --resume full.st --log full.log$" full.err &&
    ok || fail "--log on a full disk: not the one line wanted: $(cat full.err)"
[ "$(wc -c < full.log)" = $((lim - 100)) ] && ok ||
    fail "--log on a full disk: the partial line was not cut off ($(wc -c < full.log) bytes, not $((lim - 100)))"
"$BIN" eval --load full.st > full.eval 2>&1 && grep -q "model at step 5)" full.eval && ok ||
    fail "--log on a full disk: no checkpoint of step 5: $(cat full.eval)"
# room again: the run goes on, and so does its log
"$BIN" train --resume full.st --log full.log > /dev/null 2> full.err && ok ||
    fail "--log: resuming after a full disk: $(cat full.err)"
tail -n 1 full.log | grep -q '^{"impl": "tapegrad", "step": 10,' && ok ||
    fail "--log: the resumed run did not log step 10: $(tail -c 300 full.log)"
# /dev/full as the file, and as standard output for --log -
for how in file stdout; do
    if [ $how = file ]; then
        "$BIN" train --data corpus.txt $M --steps 10 --eval-every 5 --save dev.st \
            --overwrite --log /dev/full > dev.out 2> dev.err
        rc=$? want="cannot write --log /dev/full: No space left on device"
    else
        "$BIN" train --data corpus.txt $M --steps 10 --eval-every 5 --save dev.st \
            --overwrite --log - > /dev/full 2> dev.err
        rc=$? want="cannot write --log - (standard output): No space left on device"
    fi
    [ $rc = 1 ] && ok || fail "--log to /dev/full ($how): status $rc, not 1: $(cat dev.err)"
    grep -q "^charlm train: $want (the line of step 5 is not in it); stopped after saving dev.st" dev.err &&
        ok || fail "--log to /dev/full ($how): not the line wanted: $(cat dev.err)"
    [ "$(grep -c '^charlm train:' dev.err)" = 1 ] && ok || fail "--log to /dev/full ($how): more than one message: $(cat dev.err)"
    "$BIN" eval --load dev.st > dev.eval 2>&1 && grep -q "model at step 5)" dev.eval && ok ||
        fail "--log to /dev/full ($how): no checkpoint of step 5: $(cat dev.eval)"
done
# --log - into a pipe whose reader is gone: an error (EPIPE), not SIGPIPE
# killing the run between two saves
{ "$BIN" train --data corpus.txt $M --steps 100000 --eval-every 1 --save pipe.st \
      --overwrite --log - 2> pipe.err; echo $? > pipe.rc; } | true
[ "$(cat pipe.rc)" = 1 ] && ok || fail "--log - into a closed pipe: status $(cat pipe.rc), not 1: $(cat pipe.err)"
grep -q "^charlm train: cannot write --log - (standard output): Broken pipe (the line of step [0-9]* is not in it); stopped after saving pipe.st" pipe.err &&
    ok || fail "--log - into a closed pipe: not the line wanted: $(cat pipe.err)"

# ---- another run's checkpoint put at --save during a run ----------------------
# At start-up that is refused ("already holds a checkpoint"); during the run
# the next save must not replace it either: the checkpoint goes to
# PATH.<pid>, one line says so, status 1. cp writes into the same inode:
# the modification time (and size) tell it apart.
"$BIN" train --data corpus.txt $M --steps 3 --save other.st > /dev/null 2>&1 ||
    fail "taken --save: cannot make the other run's checkpoint"
cp other.st other.keep
"$BIN" train --data corpus.txt $M --steps 20000 --eval-every 2000 --save taken.st \
    > taken.out 2> taken.err &
pid=$!
wait_for taken.out '^step 2000/' || fail "taken --save: no first save: $(cat taken.err)"
cp other.st taken.st
wait $pid
rc=$?
[ $rc = 1 ] && ok || fail "taken --save: status $rc, not 1: $(cat taken.err)"
grep -q "^charlm train: taken.st was replaced during this run (it now holds a checkpoint at step 3) and is not overwritten: step [0-9]* is saved to taken.st.$pid instead (continue with: charlm train --resume taken.st.$pid)$" taken.err &&
    ok || fail "taken --save: not the line wanted: $(cat taken.err)"
cmp -s taken.st other.keep && ok || fail "taken --save: the other run's checkpoint was overwritten"
step=$(sed -n 's/.*: step \([0-9]*\) is saved to.*/\1/p' taken.err)
"$BIN" eval --load "taken.st.$pid" > taken.eval 2>&1 && grep -q "model at step $step)" taken.eval &&
    ok || fail "taken --save: taken.st.$pid is not the checkpoint of step $step: $(cat taken.eval)"
# a checkpoint removed during the run is simply written again
"$BIN" train --data corpus.txt $M --steps 4000 --eval-every 2000 --save gone.st \
    > gone.out 2> gone.err &
pid=$!
wait_for gone.out '^step 2000/' || fail "removed --save: no first save: $(cat gone.err)"
rm gone.st
wait $pid && ok || fail "removed --save: status $?: $(cat gone.err)"
"$BIN" eval --load gone.st 2>&1 | grep -q "model at step 4000)" && ok ||
    fail "removed --save: no checkpoint of step 4000"

# ---- --resume with flags other than the checkpoint's ---------------------------
# Stored flags that may change and make the run another one (--blocks,
# --reduce, --lr, --clip) say so in a note (--reduce tree and chain make
# the same additions for G <= 3: no note); the budget and --eval-every change
# nothing of the numbers and say nothing; the fixed ones are refused. The
# rule is in --help, made from the same table.
header() { n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +9 "$1" | head -c "$n"; }
"$BIN" train --data corpus.txt $M --steps 10 --eval-every 5 --save res.st > /dev/null 2>&1 ||
    fail "resume: the first run failed"
cp res.st res.keep
"$BIN" train --resume res.st --steps 12 --blocks 2 > /dev/null 2> res.err
rc=$?
[ $rc = 0 ] && ok || fail "--resume --blocks 2: status $rc: $(cat res.err)"
grep -q "^charlm train: note: --blocks 2 replaces the checkpoint's 1 from step 10 on (not the run an uninterrupted training would have made: the blocks fix the order in which a batch's gradients are summed, and with --dropout the numbers drawn)$" res.err &&
    ok || fail "--resume --blocks 2: no note saying what changes: $(cat res.err)"
header res.st | grep -q '"blocks":"2"' && ok || fail "--resume --blocks 2: the checkpoint does not store 2"
cp res.keep res.st
"$BIN" train --resume res.st --steps 12 --reduce ring > /dev/null 2> res.err || fail "--resume --reduce ring: $(cat res.err)"
grep -q "^charlm train: note: --reduce ring replaces the checkpoint's tree from step 10 on (not the run an uninterrupted training would have made: it fixes the order in which a batch's gradients are summed)$" res.err &&
    ok || fail "--resume --reduce ring: no note: $(cat res.err)"
cp res.keep res.st
"$BIN" train --resume res.st --steps 12 --reduce chain > /dev/null 2> res.err || fail "--resume --reduce chain: $(cat res.err)"
grep -q "note" res.err && fail "--resume --reduce chain with 1 block: a note: $(cat res.err)" || ok
"$BIN" train --data corpus.txt $M --steps 1 --reduce star --save star.st > /dev/null 2> res.err
grep -q "^charlm train: --reduce: unknown way of summing 'star' (tree, chain or ring)$" res.err &&
    ok || fail "--reduce star: $(cat res.err)"
cp res.keep res.st
"$BIN" train --resume res.st --steps 12 --lr 0.001 --clip 1 > /dev/null 2> res.err || fail "--resume --lr --clip: $(cat res.err)"
grep -q "^charlm train: note: --lr 0.001 replaces the checkpoint's 0.002 from step 10 on (not the run an uninterrupted training would have made)$" res.err &&
    grep -q "^charlm train: note: --clip 1 replaces the checkpoint's 5 from step 10 on" res.err &&
    ok || fail "--resume --lr --clip: no notes: $(cat res.err)"
cp res.keep res.st
"$BIN" train --resume res.st --steps 12 --eval-every 3 --blocks 1 --lr 0.002 --threads 2 \
    > /dev/null 2> res.err || fail "--resume with the same numbers: $(cat res.err)"
grep -q "note" res.err && fail "--resume: a note for flags that change nothing: $(cat res.err)" || ok
for f in "layers 3" "hidden 8" "embed 9" "seq 9" "batch 8" "cell gru" "optim sgd" \
         "dropout 0.5" "seed 2" "val-frac 0.1"; do
    cp res.keep res.st
    "$BIN" train --resume res.st --steps 12 --${f% *} ${f#* } > /dev/null 2> res.err
    rc=$?
    [ $rc = 1 ] && grep -q "^charlm train: --$f conflicts with the checkpoint's ${f% *} " res.err &&
        ok || fail "--resume --$f: not refused (status $rc): $(cat res.err)"
done
"$BIN" train --help | tr '\n' ' ' > help.txt
grep -q -- "--cell, --layers, --hidden, --embed, --seq, --batch, --optim, --dropout, --seed and --val-frac cannot change" help.txt &&
    grep -q -- "--data, --blocks, --reduce, --lr and --clip may, with a note" help.txt && ok ||
    fail "train --help does not say which flags --resume may change: $(cat help.txt)"

# ---- --init-from with another vocabulary: rows mapped by character ----------
# export records the vocabulary; --data with 'e' instead of 'd' keeps the
# rows of newline, a, b and c, starts 'e' afresh, leaves 'd' out, and says
# so. The scores of the shared characters after "abc" are then the file's,
# bit for bit. A file without 'vocab' metadata has its rows taken in order
# (said too), and one of another V is refused.
awk 'BEGIN { for (i = 0; i < 300; i++) print "abcd" }' > abcd.txt
awk 'BEGIN { for (i = 0; i < 300; i++) print "abce" }' > abce.txt
"$BIN" train --data abcd.txt $M --steps 20 --save va.st > /dev/null 2>&1 || fail "vocab: the first run failed"
"$BIN" export --load va.st --out vw.st 2> /dev/null || fail "vocab: export failed"
"$BIN" train --data abce.txt $M --steps 1 --lr 0 --init-from vw.st --save vb.st > /dev/null 2> vb.err
rc=$?
[ $rc = 0 ] && ok || fail "--init-from with another vocabulary: status $rc: $(cat vb.err)"
grep -q "^starting from the weights of vw.st (11 tensors), its vocabulary of 5 characters mapped onto --data's 5 by character: 4 in both; 1 new ('e' (U+0065)) with fresh rows; 1 of the file's left out ('d' (U+0064))$" vb.err &&
    ok || fail "--init-from with another vocabulary: no line saying how: $(cat vb.err)"
"$BIN" logits --load va.st --prime abc > va.logits 2>&1 &&
    "$BIN" logits --load vb.st --prime abc > vb.logits 2>&1 &&
    [ "$(cut -d ' ' -f 1-4 va.logits)" = "$(cut -d ' ' -f 1-4 vb.logits)" ] &&
    ! cmp -s va.logits vb.logits && ok ||
    fail "--init-from with another vocabulary: the shared characters' scores differ: $(cat va.logits vb.logits)"
sed 's/"vocab":/"vocax":/' vw.st > vn.st   # the same file without 'vocab'
"$BIN" train --data abce.txt $M --steps 1 --lr 0 --init-from vn.st --save vn1.st > /dev/null 2> vn.err &&
    grep -q "^starting from the weights of vn.st (11 tensors); it has no 'vocab' metadata, so its rows are taken as --data's characters in order, unchecked$" vn.err &&
    ok || fail "--init-from without 'vocab': $(cat vn.err)"
"$BIN" train --data corpus.txt $M --steps 1 --init-from vn.st --save vn2.st > /dev/null 2> vn.err
rc=$?
[ $rc = 1 ] && grep -q "size mismatch: embedding.weight is \[5, 8\] in the file, \[[0-9]*, 8\] in the model.*(the file has no 'vocab' metadata to map its rows by character: its V must be --data's)$" vn.err &&
    ok || fail "--init-from without 'vocab', another V: status $rc: $(cat vn.err)"

echo "charlm_faults: $checks checks passed, $failures failed"
[ $failures = 0 ]
