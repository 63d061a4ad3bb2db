#!/bin/sh
# tests/torch_interop.sh - weights between charlm and PyTorch, both ways
# (a few seconds).
#
#   sh tests/torch_interop.sh build/charlm
#
# Always: charlm export writes the weights alone under PyTorch's names, and
# charlm train --init-from starts a new run from them with the same numbers;
# --init-from names every missing, unexpected and misshapen tensor.
# With PyTorch (a python that imports torch: $TORCH_PYTHON, else
# /usr/bin/python3, else python3; skipped with a line saying so otherwise),
# for LSTM, GRU and RNN:
#   charlm train -> charlm export -> scripts/charlm_model.py's CharLM,
#     load_state_dict(strict=True) -> the same logits and validation loss
#     as charlm logits / charlm eval;
#   a CharLM made in PyTorch -> scripts/safetensors_torch.py save_file ->
#     charlm train --init-from -> the same logits, validation loss and
#     first training loss as PyTorch's, and training goes on from there;
#   scripts/train_torch_charlm.py logs charlm train's losses from the same
#     weights; scripts/gen_torch_fixtures.py writes cases torch_parity
#     passes (and one changed number fails).
set -u
SRCDIR=$(cd "$(dirname "$0")" && pwd)
SCRIPTS=$(cd "$SRCDIR/../scripts" && pwd)
. "$SRCDIR/lib.sh"
tg_test_start torch_interop "${1:-build/charlm}"

awk 'BEGIN { for (i = 1; i <= 200; i++)
    printf "%d: the quick brown fox jumps over the lazy dog - café, 5 €\n", i }' > corpus.txt
awk 'BEGIN { for (i = 0; i < 300; i++) printf "abc\n" }' > abc.txt  # 4 characters
M="--data corpus.txt --hidden 12 --embed 6 --seq 8 --batch 4 --threads 1"
PRIME="the lazy café €"

expect_fail() { # FRAGMENT COMMAND...: fails with one line naming FRAGMENT
    frag=$1; shift
    "$@" > bad.out 2> bad.err
    rc=$?
    grep -v '^training \|^corpus ' bad.err > bad.msg
    if [ $rc -eq 0 ]; then fail "'$*' succeeded"
    elif [ $rc -ge 128 ]; then fail "'$*' crashed (status $rc): $(cat bad.err)"
    elif [ "$(wc -l < bad.msg)" != 1 ]; then fail "'$*': not one line of error: $(cat bad.err)"
    elif ! grep -q -- "$frag" bad.msg; then fail "'$*': no '$frag' in: $(cat bad.msg)"
    else ok; fi
}

# ---- without PyTorch: export and --init-from in charlm alone ---------------
"$BIN" train $M --layers 2 --steps 6 --save a.st >/dev/null 2>err.txt ||
    fail "train: $(cat err.txt)"
"$BIN" export --load a.st --out w.st 2>err.txt || fail "export: $(cat err.txt)"
# weights only: no optim.* or train.* tensors, no checksum
n=$(od -An -tu8 -N8 w.st | tr -d ' ')
head -c $((8 + n)) w.st | tail -c "$n" > w.json
grep -q '"optim\.\|"train\.\|"checksum"' w.json && fail "export holds more than weights" || ok
[ "$(grep -o '"[a-z_.0-9]*":{"dtype":"F32"' w.json | wc -l)" = 11 ] && ok ||
    fail "export: not the 11 F32 tensors of a 2-layer LSTM: $(cat w.json)"
expect_fail "already exists" "$BIN" export --load a.st --out w.st
expect_fail "checkpoint itself" "$BIN" export --load a.st --out a.st --overwrite
expect_fail "not a charlm checkpoint" "$BIN" eval --load w.st
# the weights come back exactly: the same scores from the same numbers
"$BIN" train $M --layers 2 --steps 1 --lr 0 --init-from w.st --save b.st \
    >/dev/null 2>err.txt || fail "train --init-from: $(cat err.txt)"
"$BIN" logits --load a.st --prime "$PRIME" > a.logits 2>err.txt || fail "logits: $(cat err.txt)"
"$BIN" logits --load b.st --prime "$PRIME" > b.logits 2>err.txt || fail "logits: $(cat err.txt)"
[ "$(wc -l < a.logits)" = 15 ] && ok || fail "logits: $(wc -l < a.logits) lines for 15 characters"
cmp -s a.logits b.logits && ok || fail "export -> --init-from changed the model's scores"
"$BIN" train $M --layers 2 --steps 1 --lr 0 --init-from w.st --save b2.st 2>&1 >/dev/null |
    grep -q "^starting from the weights of w.st (11 tensors)" && ok ||
    fail "train --init-from does not say what it starts from"
# a run started from weights resumes exactly like any other
losses() { sed 's/"tokens_per_s": [^,]*, "elapsed_s": [^,]*, //' "$1"; }
"$BIN" train $M --layers 2 --steps 10 --eval-every 5 --init-from w.st --save r1.st \
    --log r1.log >/dev/null 2>&1 || fail "train --init-from, 10 steps"
"$BIN" train $M --layers 2 --steps 5 --eval-every 5 --init-from w.st --save r2.st \
    --log r2.log >/dev/null 2>&1 || fail "train --init-from, 5 steps"
"$BIN" train --resume r2.st --steps 10 --log r2.log >/dev/null 2>&1 || fail "resume after --init-from"
losses r1.log > r1.cmp
losses r2.log > r2.cmp
[ "$(wc -l < r1.cmp)" = 2 ] && cmp -s r1.cmp r2.cmp && ok ||
    fail "a run started with --init-from does not resume exactly"
# a checkpoint is accepted too (its training state is skipped)
"$BIN" train $M --layers 2 --steps 1 --lr 0 --init-from a.st --save c.st \
    >/dev/null 2>err.txt && ok || fail "train --init-from CKPT: $(cat err.txt)"
# strict, as load_state_dict: every name and shape that does not fit
expect_fail "missing 4: 'rnn.weight_ih_l2', 'rnn.weight_hh_l2', 'rnn.bias_ih_l2', 'rnn.bias_hh_l2'" \
    "$BIN" train $M --layers 3 --steps 1 --init-from w.st --save x.st
expect_fail "unexpected 4: 'rnn.weight_ih_l1', 'rnn.weight_hh_l1', 'rnn.bias_ih_l1', 'rnn.bias_hh_l1'" \
    "$BIN" train $M --layers 1 --steps 1 --init-from w.st --save x.st
expect_fail "rnn.weight_ih_l0 is \[48, 6\] in the file, \[36, 6\] in the model" \
    "$BIN" train $M --layers 2 --cell gru --steps 1 --init-from w.st --save x.st
expect_fail "decoder.weight is \[[0-9]*, 12\] in the file, \[[0-9]*, 16\] in the model" \
    "$BIN" train $M --layers 2 --hidden 16 --steps 1 --init-from w.st --save x.st
# (w.st records its vocabulary, which --init-from maps onto --data's -
# tests/charlm_faults.sh; without it the rows cannot be mapped)
sed 's/"vocab":/"vocax":/' w.st > w_novocab.st
expect_fail "embedding.weight is \[[0-9]*, 6\] in the file, \[4, 6\] in the model" \
    "$BIN" train $M --data abc.txt --layers 2 --steps 1 --init-from w_novocab.st --save x.st
expect_fail "--init-from: corpus.txt: header length" "$BIN" train $M --steps 1 --init-from corpus.txt --save x.st
expect_fail "--init-from nothere.st" "$BIN" train $M --steps 1 --init-from nothere.st --save x.st
expect_fail "give one of them" "$BIN" train --resume a.st --init-from w.st
[ -e x.st ] && fail "a failed --init-from saved a checkpoint" || ok

# ---- with PyTorch ------------------------------------------------------------
PY=
for p in ${TORCH_PYTHON:-} /usr/bin/python3 python3; do
    if "$p" -c 'import torch' 2>/dev/null; then PY=$p; break; fi
done
if [ -z "$PY" ]; then
    echo "torch_interop: PyTorch not found (no python that imports torch; set TORCH_PYTHON): skipping the PyTorch round trips"
else
    # compares two files of logits (one line per position)
    cat > same.py <<'EOF'
import sys
a = [[float(v) for v in l.split()] for l in open(sys.argv[1])]
b = [[float(v) for v in l.split()] for l in open(sys.argv[2])]
assert len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)), "shapes differ"
worst = max(abs(u - v) for x, y in zip(a, b) for u, v in zip(x, y))
assert worst <= 2e-5, "largest difference %.3g" % worst
EOF
    for cell in lstm gru rnn; do
        # charlm -> PyTorch: strict load, the same scores and loss
        "$BIN" train $M --cell $cell --layers 2 --steps 15 --save $cell.st \
            >/dev/null 2>err.txt || fail "$cell: train: $(cat err.txt)"
        "$BIN" export --load $cell.st --out $cell.w.st 2>err.txt || fail "$cell: export: $(cat err.txt)"
        "$BIN" logits --load $cell.st --prime "$PRIME" > $cell.logits 2>err.txt ||
            fail "$cell: logits: $(cat err.txt)"
        "$BIN" eval --load $cell.st > $cell.eval 2>err.txt || fail "$cell: eval: $(cat err.txt)"
        if "$PY" - "$SCRIPTS" $cell "$PRIME" > err.txt 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import torch
from charlm_model import CharLM, encode, evaluate, read_corpus, split
from safetensors_torch import load_file
cell, prime = sys.argv[2], sys.argv[3]
text = read_corpus("corpus.txt")
vocab = sorted(set(text))
m = CharLM(cell, len(vocab), 6, 12, 2)
m.load_state_dict(load_file(cell + ".w.st"), strict=True)
m.eval()
with torch.no_grad():
    logits, _ = m(encode(prime, vocab).view(-1, 1))
with open(cell + ".torch.logits", "w") as f:
    for row in logits[:, 0]:
        f.write(" ".join("%.9g" % v for v in row.tolist()) + "\n")
_, val = split(encode(text, vocab), 8, 4, 0.05)
want = evaluate(m, val, 8)
got = float(open(cell + ".eval").read().split()[2])
assert abs(want - got) <= 1e-4, "val loss: charlm %.4f, PyTorch %.6f" % (got, want)
EOF
        then ok; else fail "$cell: PyTorch does not load charlm's export strictly: $(cat err.txt)"; fi
        "$PY" same.py $cell.logits $cell.torch.logits > err.txt 2>&1 && ok ||
            fail "$cell: charlm's and PyTorch's logits differ: $(tail -n 1 err.txt)"

        # PyTorch -> charlm: --init-from, then the same numbers
        if "$PY" - "$SCRIPTS" $cell "$PRIME" > err.txt 2>&1 <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
from charlm_model import CharLM, encode, evaluate, read_corpus, split
from safetensors_torch import save_file
cell, prime = sys.argv[2], sys.argv[3]
torch.manual_seed(7)
text = read_corpus("corpus.txt")
vocab = sorted(set(text))
m = CharLM(cell, len(vocab), 6, 12, 2)
with torch.no_grad():  # not charlm's initialisation: made here
    for p in m.parameters():
        p.add_(0.05 * torch.randn_like(p))
save_file(m.state_dict(), cell + ".torch.st")
m.eval()
with torch.no_grad():
    logits, _ = m(encode(prime, vocab).view(-1, 1))
with open(cell + ".torch2.logits", "w") as f:
    for row in logits[:, 0]:
        f.write(" ".join("%.9g" % v for v in row.tolist()) + "\n")
train, val = split(encode(text, vocab), 8, 4, 0.05)
with torch.no_grad():
    out, _ = m(train[:8])
    first = torch.nn.functional.cross_entropy(out.reshape(-1, len(vocab)),
                                              train[1:9].reshape(-1)).item()
json.dump({"val": evaluate(m, val, 8), "first": first}, open(cell + ".torch.json", "w"))
EOF
        then ok; else fail "$cell: PyTorch could not make and save a model: $(cat err.txt)"; fi
        "$BIN" train $M --cell $cell --layers 2 --steps 1 --eval-every 1 --lr 0 \
            --init-from $cell.torch.st --save $cell.init.st --log $cell.init.log \
            >/dev/null 2>err.txt || fail "$cell: train --init-from PyTorch's file: $(cat err.txt)"
        "$BIN" logits --load $cell.init.st --prime "$PRIME" > $cell.init.logits 2>err.txt ||
            fail "$cell: logits: $(cat err.txt)"
        "$PY" same.py $cell.init.logits $cell.torch2.logits > err.txt 2>&1 && ok ||
            fail "$cell: logits after --init-from differ from PyTorch's: $(tail -n 1 err.txt)"
        if "$PY" - $cell > err.txt 2>&1 <<'EOF'
import json, sys
cell = sys.argv[1]
want = json.load(open(cell + ".torch.json"))
got = json.loads(open(cell + ".init.log").read().splitlines()[0])
for k, g in (("val", got["val_loss"]), ("first", got["train_loss"])):
    assert abs(want[k] - g) <= 2e-5 * max(1, abs(g)), "%s loss: charlm %.9g, PyTorch %.9g" % (k, g, want[k])
EOF
        then ok; else fail "$cell: losses after --init-from differ from PyTorch's: $(tail -n 1 err.txt)"; fi
        # and it trains on from there
        "$BIN" train $M --cell $cell --layers 2 --steps 30 --eval-every 30 --lr 0.01 \
            --init-from $cell.torch.st --save $cell.trained.st --log $cell.trained.log \
            >/dev/null 2>err.txt || fail "$cell: training from PyTorch's weights: $(cat err.txt)"
        a=$(sed 's/.*"val_loss": \([^,]*\),.*/\1/' $cell.init.log)
        b=$(sed 's/.*"val_loss": \([^,]*\),.*/\1/' $cell.trained.log)
        awk -v a="$a" -v b="$b" 'BEGIN { exit !(b < a) }' && ok ||
            fail "$cell: 30 steps from PyTorch's weights did not lower the val loss ($a -> $b)"
    done
    # scripts/train_torch_charlm.py is charlm train in PyTorch: from the same
    # weights, the same flags give the same losses, step for step
    for o in sgd adamw; do
        F="$M --layers 2 --optim $o --lr 0.05 --dropout 0 --steps 12 --eval-every 4 --init-from lstm.torch.st"
        # shellcheck disable=SC2086
        "$BIN" train $F --save ref.$o.st --log - > ref.$o.tg 2>err.txt || fail "train $o: $(cat err.txt)"
        # shellcheck disable=SC2086
        "$PY" "$SCRIPTS/train_torch_charlm.py" $F --save ref.$o.pt --log - > ref.$o.pt.jsonl 2>err.txt ||
            fail "train_torch_charlm.py $o: $(cat err.txt)"
        if "$PY" - ref.$o.tg ref.$o.pt.jsonl > err.txt 2>&1 <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert [x["impl"] for x in a + b] == ["tapegrad"] * 3 + ["torch"] * 3, "impl or lines"
assert [list(x) for x in a] == [list(x) for x in b], "keys differ"
for x, y in zip(a, b):
    assert x["step"] == y["step"]
    for k in ("train_loss", "val_loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), "step %d %s: %.9g vs %.9g" % (x["step"], k, x[k], y[k])
EOF
        then ok; else fail "$o: charlm train and train_torch_charlm.py differ: $(tail -n 1 err.txt)"; fi
    done
    # scripts/gen_torch_fixtures.py writes what build/torch_parity checks
    PARITY=$(dirname "$BIN")/torch_parity
    if [ -x "$PARITY" ]; then
        "$PY" "$SCRIPTS/gen_torch_fixtures.py" --out fx seq_gru_I3_H4_L2_T5_B2 \
            charlm_lstm_V7_E3_H4_L2_T5_B2 charlm_rnn_tanh_V5_E3_H4_L1_T4_B3 2>err.txt ||
            fail "gen_torch_fixtures.py: $(cat err.txt)"
        "$PARITY" fx/*.safetensors > parity.txt 2>&1 && grep -q '^3 of 3 files passed' parity.txt &&
            ok || fail "torch_parity on fresh fixtures: $(tail -n 3 parity.txt)"
        if "$PY" - "$SCRIPTS" > err.txt 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from safetensors_torch import load_file, load_metadata, save_file
path = "fx/charlm_lstm_V7_E3_H4_L2_T5_B2.safetensors"
sd, meta = load_file(path), load_metadata(path)
sd["expected.adam_step2.decoder.bias"][2] += 1e-3
save_file(sd, "fx/wrong.safetensors", meta)
EOF
        then ok; else fail "editing a fixture: $(cat err.txt)"; fi
        "$PARITY" fx/wrong.safetensors > parity.txt 2>&1 && fail "torch_parity passed a wrong fixture" ||
            { grep -q 'expected.adam_step2.decoder.bias.*FAIL' parity.txt && ok ||
              fail "torch_parity on a wrong fixture: $(tail -n 3 parity.txt)"; }
    fi
    # a file PyTorch saved with a stray tensor: named, as strict loading does
    if "$PY" - "$SCRIPTS" > err.txt 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import torch
from safetensors_torch import load_file, save_file
sd = load_file("lstm.torch.st")
sd["extra.weight"] = torch.zeros(2)
save_file(sd, "extra.st")
del sd["decoder.bias"], sd["extra.weight"]
save_file(sd, "short.st")
EOF
    then ok; else fail "editing a weights file in PyTorch: $(cat err.txt)"; fi
    expect_fail "unexpected 1: 'extra.weight'" "$BIN" train $M --layers 2 --steps 1 --init-from extra.st --save x.st
    expect_fail "missing 1: 'decoder.bias'" "$BIN" train $M --layers 2 --steps 1 --init-from short.st --save x.st
    # charlm's own metadata copied into PyTorch's file is not a way in:
    # the checksum covers tensors and metadata (README, "PyTorch and charlm")
    if "$PY" - "$SCRIPTS" > err.txt 2>&1 <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from safetensors_torch import load_file, load_metadata, save_file
sd = load_file("lstm.torch.st")
ck = load_file("lstm.st")
sd.update({k: v for k, v in ck.items() if k.startswith(("optim.", "train."))})
save_file(sd, "forged.st", load_metadata("lstm.st"))
EOF
    then ok; else fail "copying charlm's metadata in PyTorch: $(cat err.txt)"; fi
    expect_fail "corrupt" "$BIN" eval --load forged.st
fi

echo "torch_interop: $checks checks passed, $failures failed"
[ $failures = 0 ]
