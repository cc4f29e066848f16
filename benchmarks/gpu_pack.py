"""Packs what benchmarks/gpu_keras.py needs on a GPU machine that has JAX but no
TensorFlow and no package index, under the git-ignored folder .gpu/:

    python benchmarks/gpu_pack.py            # here, where pip and the real sample are

    .gpu/wheels/  Keras 3 and the two dependencies the GPU image lacks (namex,
                  optree for CPython 3.12), about 3 MiB
    .gpu/data/    the real sample's preprocessed train and val splits as .npy
                  (tokens, labels, words per review) and meta.json, about 4 MiB

and prints the one command to run there (the device tool carries `.gpu`).
"""
import argparse
import json
import pathlib
import subprocess
import sys

import numpy as np

from common import REPO, default_input

PACK = REPO / ".gpu"
KERAS = "keras==3.15.1"  # setup.py's pin
# What the GPU image lacks of Keras' requirements (absl-py, h5py, ml-dtypes,
# numpy, packaging and rich are there); optree is compiled, so for CPython 3.12.
WHEELS = [KERAS, "namex==0.1.0", "optree==0.20.0"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]

COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl "
    "&& PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1 "
    "python3 benchmarks/gpu_keras.py --data .gpu/data --out $OUT/gpu.json --budget-seconds 420"
)


def exported_split(spec, split: str) -> tuple[np.ndarray, np.ndarray]:
    from trainer import data

    tokens, labels = [], []
    for batch_tokens, batch_labels in data.dataset(spec, split, 1024):
        tokens.append(batch_tokens.numpy())
        labels.append(batch_labels.numpy())
    # int32: the ids fit, and Keras' Embedding takes either.
    return np.concatenate(tokens).astype(np.int32), np.concatenate(labels).astype(np.float32)


def export_real_sample(prep_dir: pathlib.Path, out_dir: pathlib.Path) -> dict:
    """The preprocessed splits as .npy, so the GPU machine needs no TensorFlow to read them."""
    from trainer import data

    spec = data.data_spec(str(prep_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"source": str(prep_dir), "vocab_size": spec.vocab_size, "sequence_length": spec.sequence_length}
    for split in ("train", "val"):
        tokens, labels = exported_split(spec, split)
        np.save(out_dir / f"{split}_tokens.npy", tokens)
        np.save(out_dir / f"{split}_labels.npy", labels)
        meta[f"{split}_examples"] = int(len(labels))
        if split == "train":  # the length distribution that timing draws from
            np.save(out_dir / "train_lengths.npy", (tokens != 0).sum(axis=1).astype(np.int32))
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def downloaded_wheels(out_dir: pathlib.Path) -> list[pathlib.Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(out_dir), *WHEELS], check=True)
    return sorted(out_dir.glob("*.whl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prep", default=None, help="pipelines.preprocess output (default: the real sample, preprocessed here)")
    args = parser.parse_args()
    if args.prep:
        prep = pathlib.Path(args.prep)
    else:
        from train import prepared

        prep = prepared(default_input(), "sample")
    meta = export_real_sample(prep, PACK / "data")
    wheels = downloaded_wheels(PACK / "wheels")
    size = sum(f.stat().st_size for f in PACK.rglob("*") if f.is_file())
    print(f"data: {meta['train_examples']:,} train / {meta['val_examples']:,} val reviews, vocabulary {meta['vocab_size']:,}")
    print(f"wheels: {', '.join(w.name for w in wheels)}")
    print(f"{PACK} holds {size / 2**20:.1f} MiB. On the GPU machine (device tool, carry ['.gpu']):")
    print(COMMAND)


if __name__ == "__main__":
    main()
