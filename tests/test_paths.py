"""reviews.paths matches files on tf.io.gfile as Beam's FileSystems.match does,
so the checks before a run and the pipeline's own reading agree on the files."""
import pytest
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

from reviews.paths import files_matching, input_problem, matched_files, output_problem

TREE = ("a.csv", "b.csv", "c.txt", "ab.csv", "sub/d.csv", "sub/deeper/e.csv", "sub/f.txt.gz", "[x].csv", "other/g.csv")
PATTERNS = ("*.csv", "a.csv", "?.csv", "a*.csv", "[ab].csv", "[!a].csv", "sub/*.csv", "sub/*", "sub/", "**.csv",
            "sub/**", "*/*.csv", "sub/deeper/e.csv", "missing.csv", "missing/*.csv", "sub", "s*/d.csv", "[x].csv",
            "sub/*.txt.gz", "a.csv*", "**/e.csv")


def beam_matches(pattern: str) -> list[str]:
    return sorted(metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    for name in TREE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("Id\n")
    return root


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_local_pattern_matches_what_beam_matches(tree, pattern):
    expected = beam_matches(f"{tree}/{pattern}")
    assert files_matching(f"{tree}/{pattern}") == expected
    if pattern in ("*.csv", "sub/*.csv", "**.csv", "sub/deeper/e.csv", "sub"):
        assert expected  # the comparison is not only of empty lists


def test_a_comma_list_matches_each_pattern_in_turn(tree):
    patterns = f"{tree}/a.csv, {tree}/sub/*.csv,{tree}/c.txt"
    assert matched_files(patterns) == [f"{tree}/a.csv", f"{tree}/sub/d.csv", f"{tree}/c.txt"]
    assert input_problem(f"{tree}/a.csv,{tree}/nothing*.csv") == f"no input file matches '{tree}/nothing*.csv'"
    assert "is a directory" in input_problem(f"{tree}/sub")


def test_a_remote_file_system_matches_like_a_local_one(tree):
    # TensorFlow's in-memory file system stands in for gs:// (the same gfile calls, a URL scheme, no disk).
    root = "ram://bucket/tree"
    for name in TREE:
        tf.io.gfile.makedirs(f"{root}/{name}".rsplit("/", 1)[0])
        with tf.io.gfile.GFile(f"{root}/{name}", "w") as handle:
            handle.write("Id\n")
    for pattern in PATTERNS:
        local = [path[len(str(tree)):] for path in files_matching(f"{tree}/{pattern}")]
        assert [path[len(root):] for path in files_matching(f"{root}/{pattern}")] == local, pattern
    assert output_problem(f"{root}/a.csv/out", "--output") is None  # remote files are not probed as local ones
