"""Golden outputs of pipelines.preprocess: the real sample and a file with every
kind of damage, reduced to digests that any later run (a faster reader, another
runner) must reproduce exactly: the decoded examples per split, the vocabulary,
report.json and the rejected rows.

Update them only for a deliberate contract change, in a commit that says which
and why:  UPDATE_GOLDEN=1 make test PYTEST_ARGS="tests/test_golden.py"
"""
import gzip
import hashlib
import json
import os
import pathlib

import pytest

from tests.conftest import FIXTURE_CSV, run_module
from tests.test_preprocess import SPLITS, read_split

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


def digest(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


def golden_of(out: pathlib.Path) -> dict:
    """Everything the contract promises, independent of file layout, sharding and paths."""
    examples = {}
    for split in SPLITS:
        rows = sorted(read_split(out, split), key=lambda r: int(r["review_id"]))
        examples[split] = {"count": len(rows), "sha256": digest(
            f"{int(r['review_id'])} {int(r['time'])} {int(r['label'])} {int(r['num_words'])} "
            f"{' '.join(map(str, r['tokens'].tolist()))}" for r in rows)}
    rejected = []
    for path in sorted((out / "rejected").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row["source"] = pathlib.Path(row["source"]).name  # where the test ran is not the contract
            rejected.append(json.dumps(row, sort_keys=True, ensure_ascii=True))
    vocabulary = (out / "transform_fn" / "assets" / "words").read_text(encoding="utf-8").splitlines()
    return {
        "report": json.loads((out / "report.json").read_text()),
        "vocabulary": {"words": len(vocabulary), "sha256": digest(vocabulary)},
        "examples": examples,
        "rejected": {"count": len(rejected), "sha256": digest(sorted(rejected))},
    }


def damaged_inputs(folder: pathlib.Path) -> str:
    """The fixture (every validation reason) plus every reader damage, made by
    code so the repository holds no large file: Ids past int64, a stray quote,
    an oversized field, texts with no words, a missing field, a NUL byte, a
    quote still open at the end of the file, a truncated and a corrupt gzip."""
    lines = FIXTURE_CSV.read_bytes().decode("utf-8", "surrogateescape").splitlines()
    template = "{i},B0G{i:05d},UG{i},G,0,1,{score},{time},s,\"{text}\""
    extra = [template.format(i=100 + i, score=1 + i % 5, time=1100000000 + 86400 * i, text=f"golden review {i}, crisp and fresh")
             for i in range(60)]
    extra[5] = extra[5].replace("100000000", "9223372036854775808", 1)  # Time past int64
    extra[6] = "9223372036854775808" + extra[6][3:]  # Id past int64
    extra[20] = extra[20][:-1]  # a stray quote: its field never closes
    extra[30] = extra[30].replace("golden review 30, crisp and fresh", "long " * 60_000)  # 300 kB
    extra[40] = extra[40].replace("golden review 40, crisp and fresh", "😀 12345 <br />")  # no words
    extra[45] = extra[45].replace("B0G00145", "")  # missing_field
    extra[50] = extra[50].replace("golden", "gol\x00den")  # a NUL byte: Python 3.11's csv reads it as a letter
    tail = ['999,B0G00999,UG999,G,0,1,5,1200000000,s,"a review that never ends', "and prose after it", "to the end"]
    csv_path = folder / "damaged.csv"
    csv_path.write_bytes(("\n".join(lines + extra + tail) + "\n").encode("utf-8", "surrogateescape"))
    compressed = gzip.compress(("\n".join(lines[:1] + extra[:40]) + "\n").encode(), mtime=0)
    truncated, corrupt = folder / "truncated.csv.gz", folder / "corrupt.csv.gz"
    truncated.write_bytes(compressed[: len(compressed) * 3 // 4])
    middle = len(compressed) // 2
    corrupt.write_bytes(compressed[:middle] + b"\xff" * 64 + compressed[middle + 64:])
    return f"{csv_path},{truncated},{corrupt}"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sample", "damaged"])
def test_preprocess_reproduces_its_golden_outputs(name, request, tmp_path):
    if name == "sample":
        out = request.getfixturevalue("prepared_sample")
    else:
        # As a user runs it, in a process of its own (which picks Keras 2 before TensorFlow
        # loads), where `prepared_sample` ran in this one: both must keep the contract.
        out = tmp_path / "out"
        result = run_module("pipelines.preprocess", "--input", damaged_inputs(tmp_path), "--output", str(out),
                            "--max-length", "24", "--vocab-size", "300", "--num-shards", "3")
        assert result.returncode == 0, result.stderr
        # Its own start line and nothing of the libraries' (tf.Transform's TF1 mode is chatty).
        assert [line for line in result.stderr.splitlines() if " INFO preprocess: " not in line] == [], result.stderr
    got = golden_of(out)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    expected = json.loads(path.read_text())
    assert got["report"] == expected["report"]
    assert got == expected
