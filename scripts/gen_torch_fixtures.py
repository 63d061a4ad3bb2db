#!/usr/bin/python3
"""Writes PyTorch reference cases for build/torch_parity: safetensors files
of a model's inputs, parameters, outputs and gradients, computed in float64.

    /usr/bin/python3 scripts/gen_torch_fixtures.py --out DIR [CASE...]

A CASE is a file name without .safetensors; without any, the 16 cases of
tests/fixtures are written (with other random numbers than those files:
the seed is the case's own, drawn from its name):

  seq_<cell>_I<i>_H<h>_L<l>_T<t>_B<b>          nn.LSTM / nn.GRU / nn.RNN
      inputs input.x [T, B, I], input.h0 (and input.c0) [L, B, H], and the
      weights dy, dh_n (dc_n) of the loss
          sum(y * dy) + sum(h_n * dh_n) (+ sum(c_n * dc_n));
      outputs expected.y, expected.h_n (expected.c_n), expected.loss;
      gradients grad.input.x, grad.input.h0 (grad.input.c0), grad.rnn.*
  charlm_<cell>_V<v>_E<e>_H<h>_L<l>_T<t>_B<b>   scripts/charlm_model.py's CharLM
      inputs input.tokens, input.targets (I64 [T, B]), input.h0 (input.c0);
      outputs expected.logits, expected.loss (mean cross-entropy),
      expected.h_n (expected.c_n); gradients grad.<param>, grad.input.h0
      (grad.input.c0) of that one backward pass; expected.grad_norm (the
      norm clip_grad_norm_ saw), expected.sgd_step.<param> (after clipping
      and one SGD step), expected.adam_step2.<param> (two Adam steps from
      the initial weights on the same batch, unclipped)

<cell> is lstm, gru or rnn_tanh. Parameters are stored under PyTorch's
state_dict names (seq files: with the prefix "rnn."), in F32, and so are
inputs: both are rounded to float32 before the float64 computation, so
that the program under test starts from exactly the same numbers. Outputs
and gradients are stored in F64. Metadata: kind (seq or charlm), cell,
sizes (input_size or vocab and embed, hidden_size, num_layers, seq_len,
batch), seed, gate_order, and for charlm sgd_lr, clip_grad_norm, adam_lr,
adam_betas, adam_eps, grad_h0.
"""
import argparse
import os
import re
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from charlm_model import CharLM  # noqa: E402
from safetensors_torch import save_file  # noqa: E402

DEFAULT = """seq_lstm_I1_H1_L1_T1_B1 seq_lstm_I3_H4_L1_T5_B2 seq_lstm_I5_H6_L2_T7_B3
seq_lstm_I8_H16_L3_T100_B1 seq_gru_I3_H4_L1_T5_B2 seq_gru_I4_H3_L1_T3_B5
seq_gru_I5_H6_L2_T7_B3 seq_gru_I7_H12_L3_T120_B2 seq_rnn_tanh_I3_H4_L1_T5_B2
seq_rnn_tanh_I5_H9_L2_T100_B1 charlm_lstm_V11_E5_H6_L2_T6_B3
charlm_lstm_V13_E7_H10_L3_T100_B1 charlm_gru_V11_E5_H6_L1_T6_B3
charlm_gru_V17_E6_H8_L2_T40_B4 charlm_rnn_tanh_V11_E5_H6_L1_T6_B3
charlm_rnn_tanh_V9_E4_H5_L3_T12_B1""".split()
GATES = {"lstm": "i,f,g,o", "gru": "r,z,n", "rnn_tanh": "-"}
SGD_LR, CLIP, ADAM_LR, ADAM_EPS = 0.5, 1.0, 0.01, 1e-8


def f32(t):
    """t rounded to float32, held in float64"""
    return t.float().double()


def randn(*shape):
    return f32(torch.randn(*shape, dtype=torch.float64))


def rnn_module(cell, I, H, L):
    if cell == "lstm":
        return torch.nn.LSTM(I, H, num_layers=L)
    if cell == "gru":
        return torch.nn.GRU(I, H, num_layers=L)
    return torch.nn.RNN(I, H, num_layers=L, nonlinearity="tanh")


def round_params(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(f32(p))


def seq_case(cell, I, H, L, T, B):
    lstm = cell == "lstm"
    m = rnn_module(cell, I, H, L).double()
    round_params(m)
    x = randn(T, B, I).requires_grad_()
    h0 = randn(L, B, H).requires_grad_()
    c0 = randn(L, B, H).requires_grad_() if lstm else None
    dy, dh, dc = randn(T, B, H), randn(L, B, H), randn(L, B, H)
    y, state = m(x, (h0, c0) if lstm else h0)
    h_n, c_n = state if lstm else (state, None)
    loss = (y * dy).sum() + (h_n * dh).sum() + ((c_n * dc).sum() if lstm else 0)
    loss.backward()
    out = {"input.x": x, "input.h0": h0, "input.dy": dy, "input.dh_n": dh}
    out.update({"rnn." + k: v for k, v in m.state_dict().items()})
    exp = {"expected.y": y, "expected.h_n": h_n, "expected.loss": loss,
           "grad.input.x": x.grad, "grad.input.h0": h0.grad}
    if lstm:
        out.update({"input.c0": c0, "input.dc_n": dc})
        exp.update({"expected.c_n": c_n, "grad.input.c0": c0.grad})
    exp.update({"grad.rnn." + k: p.grad for k, p in m.named_parameters()})
    meta = {"kind": "seq", "input_size": str(I), "hidden_size": str(H),
            "num_layers": str(L), "seq_len": str(T), "batch": str(B),
            "loss": "sum(y*dy)+sum(h_n*dh_n)" + ("+sum(c_n*dc_n)" if lstm else "")}
    return out, exp, meta


def charlm_case(cell, V, E, H, L, T, B):
    lstm = cell == "lstm"
    m = CharLM(cell, V, E, H, L).double()
    round_params(m)
    init = {k: v.clone() for k, v in m.state_dict().items()}
    tokens, targets = torch.randint(V, (T, B)), torch.randint(V, (T, B))
    h0, c0 = randn(L, B, H), randn(L, B, H)

    def run():
        h = h0.clone().requires_grad_()
        c = c0.clone().requires_grad_() if lstm else None
        logits, state = m(tokens, (h, c) if lstm else h)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        loss.backward()
        return logits, state, loss, h, c

    logits, state, loss, h, c = run()
    h_n, c_n = state if lstm else (state, None)
    out = {"input.tokens": tokens, "input.targets": targets, "input.h0": h0}
    out.update(init)
    exp = {"expected.logits": logits, "expected.loss": loss, "expected.h_n": h_n,
           "grad.input.h0": h.grad}
    if lstm:
        out["input.c0"] = c0
        exp.update({"expected.c_n": c_n, "grad.input.c0": c.grad})
    exp.update({"grad." + k: p.grad.clone() for k, p in m.named_parameters()})
    exp["expected.grad_norm"] = torch.nn.utils.clip_grad_norm_(m.parameters(), CLIP)
    torch.optim.SGD(m.parameters(), lr=SGD_LR).step()
    exp.update({"expected.sgd_step." + k: v.clone() for k, v in m.state_dict().items()})
    m.load_state_dict(init)
    adam = torch.optim.Adam(m.parameters(), lr=ADAM_LR, betas=(0.9, 0.999), eps=ADAM_EPS)
    for _ in range(2):
        adam.zero_grad()
        run()
        adam.step()
    exp.update({"expected.adam_step2." + k: v.clone() for k, v in m.state_dict().items()})
    meta = {"kind": "charlm", "vocab": str(V), "embed": str(E), "hidden_size": str(H),
            "num_layers": str(L), "seq_len": str(T), "batch": str(B),
            "loss": "mean cross-entropy over T*B", "sgd_lr": repr(SGD_LR),
            "clip_grad_norm": repr(CLIP), "adam_lr": repr(ADAM_LR),
            "adam_betas": "0.9,0.999", "adam_eps": repr(ADAM_EPS),
            "grad_h0": "one backward pass"}
    return out, exp, meta


def write(name, directory):
    m = re.fullmatch(r"(seq|charlm)_(lstm|gru|rnn_tanh)_((?:[A-Z]\d+_?)+)", name)
    if not m:
        sys.exit("gen_torch_fixtures: '%s' is not a case name (seq_<cell>_I.._H.._L.._T.._B.. "
                 "or charlm_<cell>_V.._E.._H.._L.._T.._B..; cell lstm, gru or rnn_tanh)" % name)
    kind, cell = m.group(1), m.group(2)
    sizes = dict((s[0], int(s[1:])) for s in m.group(3).strip("_").split("_"))
    keys = "IHLTB" if kind == "seq" else "VEHLTB"
    if sorted(sizes) != sorted(keys) or min(sizes.values()) < 1:
        sys.exit("gen_torch_fixtures: '%s' needs the sizes %s, each >= 1"
                 % (name, ", ".join(keys)))
    seed = zlib.crc32(name.encode()) % 100000
    torch.manual_seed(seed)
    args = [sizes[k] for k in keys]
    out, exp, meta = (seq_case if kind == "seq" else charlm_case)(cell, *args)
    tensors = {k: (v if v.dtype == torch.int64 else v.detach().float()) for k, v in out.items()}
    tensors.update({k: torch.as_tensor(v).detach().double() for k, v in exp.items()})
    meta.update({"cell": cell, "seed": str(seed), "gate_order": GATES[cell],
                 "generator": "torch " + torch.__version__})
    save_file(tensors, os.path.join(directory, name + ".safetensors"), meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="directory to write into")
    ap.add_argument("cases", nargs="*", help="case names (default: tests/fixtures' 16)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(1)
    for name in a.cases or DEFAULT:
        write(name, a.out)


if __name__ == "__main__":
    main()
