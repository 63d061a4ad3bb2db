#!/usr/bin/python3
"""Reads and writes safetensors files with PyTorch alone (no `safetensors`
package: Debian 12 does not have one, and this is all it takes).

A safetensors file is an 8-byte little-endian length N, N bytes of JSON
    {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}, ...,
     "__metadata__": {"key": "string value", ...}}
and then the raw little-endian, row-major bytes of every tensor, tensor
"name" at [b, e) counted from the end of the JSON.

As a module (the names of safetensors.torch):

    import sys; sys.path.insert(0, "scripts")
    from safetensors_torch import load_file, save_file, load_metadata
    sd = load_file("model.safetensors")            # {name: tensor}
    save_file(model.state_dict(), "model.safetensors", {"note": "mine"})

As a program: `scripts/safetensors_torch.py FILE` lists the tensors
(name, dtype, shape) and the metadata of FILE.

save_file writes a temporary file beside the target, flushes it to disk
and renames it: the target is replaced whole or not at all.
"""
import json
import os
import struct
import sys
import tempfile

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}

if sys.byteorder != "little":
    raise ImportError("safetensors_torch: this script reads and writes "
                      "little-endian bytes only")


def _header(blob, path):
    if len(blob) < 8:
        raise ValueError("%s: %d bytes, not a safetensors file" % (path, len(blob)))
    n = struct.unpack("<Q", blob[:8])[0]
    if n > len(blob) - 8:
        raise ValueError("%s: header length %d does not fit the file (%d bytes): "
                         "not a safetensors file, or truncated" % (path, n, len(blob)))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError("%s: the header is not JSON: %s" % (path, e)) from None
    if not isinstance(header, dict):
        raise ValueError("%s: the header is not a JSON object" % path)
    return header, 8 + n


def load_metadata(path):
    """The "__metadata__" of path: a dict of strings (empty if none)."""
    with open(path, "rb") as f:
        blob = f.read()
    return dict(_header(blob, path)[0].get("__metadata__") or {})


def load_file(path, device="cpu"):
    """{name: tensor} of every tensor in path (copies, in file order)."""
    with open(path, "rb") as f:
        blob = f.read()
    header, start = _header(blob, path)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ValueError("%s: tensor '%s' has dtype %r, which this script "
                             "does not read (%s)" % (path, name, info.get("dtype"),
                                                     ", ".join(DTYPES)))
        shape = [int(d) for d in info["shape"]]
        b, e = (int(x) for x in info["data_offsets"])
        numel = 1
        for d in shape:
            numel *= d
        size = numel * torch.empty((), dtype=dtype).element_size()
        if not (0 <= b <= e <= len(blob) - start) or e - b != size:
            raise ValueError("%s: tensor '%s': data_offsets [%d, %d] do not hold "
                             "%s %s" % (path, name, b, e, info["dtype"], shape))
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            raw = torch.frombuffer(bytearray(blob[start + b:start + e]), dtype=torch.uint8)
            t = raw.view(dtype).reshape(shape)
        out[name] = t.to(device)
    return out


def save_file(tensors, path, metadata=None):
    """Writes {name: tensor} (and string metadata) to path, atomically."""
    header, chunks, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise ValueError("metadata keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' cannot name a tensor")
        if not isinstance(t, torch.Tensor):
            raise ValueError("'%s' is not a tensor" % name)
        if t.dtype not in NAMES:
            raise ValueError("tensor '%s' has dtype %s, which safetensors does not "
                             "store" % (name, t.dtype))
        t = t.detach().to("cpu").contiguous()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: %s FILE   (lists the tensors and metadata of a safetensors file)"
              % argv[0], file=sys.stderr)
        return 2
    try:
        sd, meta = load_file(argv[1]), load_metadata(argv[1])
    except (OSError, ValueError) as e:
        print("safetensors_torch: %s" % e, file=sys.stderr)
        return 1
    for name, t in sd.items():
        print("%-32s %-5s %s" % (name, NAMES[t.dtype], list(t.shape)))
    for k, v in meta.items():
        print("metadata %s = %s" % (k, v if len(v) <= 60 else v[:57] + "..."))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
