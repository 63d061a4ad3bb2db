#!/usr/bin/python3
"""charlm's model and data pipeline in PyTorch, name for name.

The model is Embedding(V, E) -> nn.LSTM / nn.GRU / nn.RNN (L layers of H,
dropout between layers) -> Dropout -> Linear(H, V), with exactly the
state_dict names charlm's checkpoints and `charlm export` use:

    embedding.weight  rnn.weight_ih_l0 rnn.weight_hh_l0 rnn.bias_ih_l0
    rnn.bias_hh_l0 ... rnn.bias_hh_l<L-1>  decoder.weight  decoder.bias

so `CharLM(...).load_state_dict(load_file("exported.safetensors"))` is
strict, and `save_file(model.state_dict(), "w.safetensors")` makes a file
`charlm train --init-from w.safetensors` starts from (the same --cell,
--layers, --hidden, --embed, and a --data with the same characters).

The data pipeline is charlm's too: the corpus (a file, or a directory's
regular files sorted by name, skipping *.dat, *.u8 and links) read as
UTF-8 with universal newlines; the vocabulary is the sorted set of its
characters; the last max(int(n * val_frac), T * B + 1) characters are
held out; each part is cut into B contiguous streams; evaluation runs over
the held-out streams in chunks of T with the state carried along.

    import sys; sys.path.insert(0, "scripts")
    from charlm_model import CharLM, from_export
    from safetensors_torch import load_file
    model, vocab = from_export("w.safetensors")    # charlm export's file
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # safetensors_torch

CELLS = ("lstm", "gru", "rnn", "rnn_tanh", "rnn_relu")


def read_corpus(path):
    """The text of a file, or of a directory's files in name order."""
    if os.path.isdir(path):
        names = sorted(n for n in os.listdir(path)
                       if not n.endswith((".dat", ".u8"))
                       and not os.path.islink(os.path.join(path, n))
                       and os.path.isfile(os.path.join(path, n)))
        return "".join(open(os.path.join(path, n), encoding="utf-8").read() for n in names)
    return open(path, encoding="utf-8").read()


def vocabulary(text):
    """The sorted characters of text: id i is vocab[i]."""
    return sorted(set(text))


def encode(text, vocab):
    index = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([index[c] for c in text], dtype=torch.long)


def split(ids, T, B, val_frac):
    """(train, val) streams [n, B] as charlm cuts them."""
    n_val = max(int(len(ids) * val_frac), T * B + 1)
    return streams(ids[:-n_val], B), streams(ids[-n_val:], B)


def streams(ids, B):
    n = len(ids) // B
    return ids[: n * B].view(B, n).t().contiguous()  # [n, B]


class CharLM(torch.nn.Module):
    def __init__(self, cell, V, E, H, L, dropout=0.0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError("cell %r: PyTorch has %s (charlm's other cells "
                             "have no nn module)" % (cell, ", ".join(CELLS)))
        self.embedding = torch.nn.Embedding(V, E)
        drop = dropout if L > 1 else 0.0
        if cell == "lstm":
            self.rnn = torch.nn.LSTM(E, H, num_layers=L, dropout=drop)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(E, H, num_layers=L, dropout=drop)
        else:
            self.rnn = torch.nn.RNN(E, H, num_layers=L, dropout=drop,
                                    nonlinearity="relu" if cell == "rnn_relu" else "tanh")
        self.drop = torch.nn.Dropout(dropout)
        self.decoder = torch.nn.Linear(H, V)

    def forward(self, x, state=None):
        """x [T, B] token ids -> logits [T, B, V], the state after x."""
        y, state = self.rnn(self.embedding(x), state)
        return self.decoder(self.drop(y)), state


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def evaluate(model, val, T):
    """Mean cross-entropy (nats per character) over the streams val [n, B]."""
    was = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for s in range(0, val.size(0) - 1, T):
            t = min(T, val.size(0) - 1 - s)
            x, y = val[s:s + t], val[s + 1:s + 1 + t]
            logits, state = model(x, state)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train(was)
    return total / count


def from_export(path):
    """(model, vocab) from a file of `charlm export` (its metadata names the
    architecture and the characters), weights loaded strictly."""
    from safetensors_torch import load_file, load_metadata
    meta = load_metadata(path)
    missing = [k for k in ("cell", "layers", "hidden", "embed", "vocab") if k not in meta]
    if missing:
        raise ValueError("%s has no %s in its metadata: not written by charlm "
                         "export; build CharLM(...) yourself" % (path, ", ".join(missing)))
    vocab = list(meta["vocab"])
    model = CharLM(meta["cell"], len(vocab), int(meta["embed"]), int(meta["hidden"]),
                   int(meta["layers"]), float(meta.get("dropout", "0")))
    model.load_state_dict(load_file(path), strict=True)
    return model, vocab
