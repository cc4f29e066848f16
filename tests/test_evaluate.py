"""trainer.evaluate: the evaluation report a job writes (and that runs alone on
a finished job), and the profile its export carries."""
import base64
import html.parser
import json
import pathlib
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from reviews import drift
from tests.conftest import run_main, assert_one_line_error, latest_export, lock_holder, mounted_tmpfs, run_module
from tests.test_preprocess import read_split
from trainer import models


def evaluation_of(job) -> dict:
    return json.loads((job / "evaluation" / "evaluation.json").read_text())


def test_slices_add_up_to_the_test_split_and_years_match_the_stored_times(trained_job, prepared):
    slices = json.loads((trained_job / "evaluation" / "slices.json").read_text())
    test_examples = json.loads((prepared / "report.json").read_text())["examples"]["test"]
    for slicing in ("words_per_review", "year"):
        assert sum(s["examples"] for s in slices[slicing].values()) == test_examples
    rows = read_split(prepared, "test")
    years = pd.Series(pd.to_datetime([int(r["time"]) for r in rows], unit="s").year).value_counts()
    assert {year: s["examples"] for year, s in slices["year"].items()} == {str(y): int(n) for y, n in years.items()}
    words = np.array([int(r["num_words"]) for r in rows])
    assert slices["words_per_review"]["11-25 words"]["examples"] == int(((words >= 11) & (words <= 25)).sum())
    for metrics in slices["year"].values():
        assert set(metrics) == {"examples", "positive", "accuracy", "auc", "f1_negative"}
        assert metrics["auc"] is None or 0 <= metrics["auc"] <= 1


def test_the_threshold_is_chosen_on_validation_and_maximises_its_macro_f1(trained_job, prepared):
    """Scored again here with Keras' own predict on fixed-length validation batches."""
    result = evaluation_of(trained_job)
    metrics = json.loads((trained_job / "metrics.json").read_text())
    rows = read_split(prepared, "val")
    model = models.BUILDERS[metrics["model"]](metrics["vocab_size"])
    model.load_weights(str(trained_job / metrics["evaluated_weights"]))  # relative to the job
    probabilities = model.predict(np.stack([r["tokens"] for r in rows]), verbose=0).reshape(-1)
    labels = np.array([int(r["label"]) for r in rows])
    macro = lambda t: f1_score(labels, (probabilities >= t).astype(int), average="macro", labels=[0, 1], zero_division=0.0)  # noqa: E731
    chosen = result["chosen_threshold"]
    assert chosen["chosen_on"] == "validation"
    assert macro(chosen["threshold"]) == pytest.approx(chosen["val_macro_f1"], abs=1e-9)
    assert chosen["val_macro_f1"] >= max(macro(t) for t in np.unique(probabilities)) - 1e-9
    # metrics.json carries its test figures, and the test figures at 0.5 are metrics.json's own.
    assert metrics["chosen_threshold"] == chosen["threshold"]
    assert metrics["test_macro_f1_at_chosen_threshold"] == result["at_chosen"]["macro_f1"]
    assert result["at_0.5"]["macro_f1"] == pytest.approx(metrics["test_macro_f1"])
    assert result["at_0.5"]["negative"]["f1"] == pytest.approx(metrics["test_f1_negative"])


class PageParts(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.links, self.rows, self._table = {}, {}, [], {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images[attrs["id"]] = attrs["src"]
        elif tag == "table":
            self._table = attrs["id"]
            self.tables[self._table] = 0
        elif tag == "tr" and self._table:
            self.tables[self._table] += 1
        elif tag in ("a", "link", "script"):
            self.links.append((tag, attrs))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


def test_report_html_is_one_offline_page_with_every_picture_and_table(trained_job):
    page = PageParts()
    page.feed((trained_job / "evaluation" / "report.html").read_text(encoding="utf-8"))
    assert set(page.images) == {"roc-pr", "calibration", "confusion", "history"}
    for src in page.images.values():
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.links == []  # nothing to fetch: no script, stylesheet or link
    result = evaluation_of(trained_job)
    slices = json.loads((trained_job / "evaluation" / "slices.json").read_text())
    # Each table: a header row plus its rows.
    assert page.tables["summary-table"] == 1 + 2
    assert page.tables["threshold-table"] == 1 + len(result["threshold_table"]) >= 1 + 9
    assert page.tables["slices-length"] == 1 + len(slices["words_per_review"])
    assert page.tables["slices-year"] == 1 + len(slices["year"])
    for name in ("false_positives", "false_negatives"):
        assert page.tables[name.replace("_", "-")] == 1 + max(len(result[name]), 1)  # "none" when empty
        assert len(result[name]) <= 10


def test_the_mistakes_are_the_most_confident_ones(trained_job):
    result = evaluation_of(trained_job)
    fp, fn = result["false_positives"], result["false_negatives"]
    assert all(m["label"] == 0 and m["probability"] >= 0.5 for m in fp)
    assert all(m["label"] == 1 and m["probability"] < 0.5 for m in fn)
    assert [m["probability"] for m in fp] == sorted((m["probability"] for m in fp), reverse=True)
    assert [m["probability"] for m in fn] == sorted(m["probability"] for m in fn)
    assert all("text" not in m for m in fp + fn)  # no --raw-input: ids only


def test_evaluate_alone_reproduces_the_report_and_adds_the_texts(trained_job, synthetic_csv, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(trained_job, job)
    shutil.rmtree(job / "evaluation")
    result = run_main("trainer.evaluate", "--job-dir", str(job), "--raw-input", str(synthetic_csv))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("threshold ") and "report.html" in result.stdout and "Traceback" not in result.stderr
    alone, during = evaluation_of(job), evaluation_of(trained_job)
    texts = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False).set_index("Id")["Text"]
    for name in ("false_positives", "false_negatives"):
        for mistake in alone[name]:
            assert mistake.pop("text") == texts[str(mistake["review_id"])]
    for key in ("chosen_threshold", "at_0.5", "at_chosen", "threshold_table", "calibration", "false_positives",
                "false_negatives"):
        assert alone[key] == during[key], key
    assert (job / "evaluation" / "report.html").exists() and (job / "evaluation" / "slices.json").exists()


@pytest.mark.parametrize("case", ["unfinished", "raw_input"])
def test_bad_evaluate_input_is_a_one_line_error(trained_job, tmp_path, case):
    args = ["--job-dir", str(tmp_path)] if case == "unfinished" else [
        "--job-dir", str(trained_job), "--raw-input", str(tmp_path / "nope.csv")]
    result = run_main("trainer.evaluate", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("evaluate: error: ") and ("no metrics.json" in message if case == "unfinished" else "nope.csv" in message)


def test_the_export_carries_the_validation_profile_counted_independently(trained_job, prepared):
    profile = json.loads((pathlib.Path(latest_export(trained_job)) / "assets.extra" / "profile.json").read_text())
    rows = read_split(prepared, "val")
    report = json.loads((prepared / "report.json").read_text())
    assert profile["reviews"] == len(rows) == report["examples"]["val"]
    assert profile["labels"] == report["labels"]["val"]
    words = pd.Series([int(r["num_words"]) for r in rows])
    bounds = profile["words_per_review"]["lower_bounds"]
    expected = pd.cut(words, bins=[*bounds, np.inf], right=False).value_counts(sort=False).tolist()
    assert profile["words_per_review"]["counts"] == expected
    oov_id = report["vocabulary_size"] - 1
    oov = pd.Series([np.mean(r["tokens"][r["tokens"] != 0] == oov_id) for r in rows])
    expected = pd.cut(oov, bins=[*profile["oov_fraction"]["lower_bounds"], np.inf], right=False).value_counts(sort=False)
    assert profile["oov_fraction"]["counts"] == expected.tolist()
    assert sum(profile["score"]["counts"]) == len(rows)
    assert set(profile) >= set(drift.DISTRIBUTIONS)



@pytest.mark.slow
def test_real_sample_report_lists_the_mistakes_with_their_texts(sample_job, shared_sample):
    result = evaluation_of(sample_job)
    texts = pd.read_csv(shared_sample, dtype=str, keep_default_na=False).set_index("Id")["Text"]
    mistakes = result["false_positives"] + result["false_negatives"]
    # At most 10 of each: here 10 negatives are scored positive, and fewer positives negative.
    assert len(result["false_positives"]) == 10 and 1 <= len(result["false_negatives"]) <= 10
    assert all(m["text"] == texts[str(m["review_id"])] for m in mistakes)
    scores = pd.read_csv(shared_sample, dtype=str).set_index("Id")["Score"].astype(int)
    assert all((scores[str(m["review_id"])] > 3) == bool(m["label"]) for m in mistakes)
    # On real reviews (84 % positive) the cut chosen on validation is above 0.5 and lifts the minority class's F1.
    assert result["chosen_threshold"]["threshold"] > 0.5
    assert result["at_chosen"]["negative"]["f1"] > result["at_0.5"]["negative"]["f1"]


@pytest.mark.slow
def test_evaluate_alone_takes_the_jobs_own_raw_input(sample_job, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(sample_job, job)
    shutil.rmtree(job / "evaluation")
    from trainer import evaluate

    assert evaluate.main(["--job-dir", str(job)]) == 0
    assert all(m["text"] for m in evaluation_of(job)["false_positives"])


def test_data_with_another_vocabulary_is_refused(trained_job, prepared, tmp_path):
    """Ids mean words of one vocabulary: the same ids over another would evaluate nonsense."""
    other = tmp_path / "prep"
    shutil.copytree(prepared, other)
    words = other / "transform_fn" / "assets" / "words"
    words.write_text("\n".join(reversed(words.read_text().splitlines())) + "\n")  # same size, other words
    result = run_main("trainer.evaluate", "--job-dir", str(trained_job), "--data", str(other))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "was made with another vocabulary than the job's data" in result.stderr.strip().splitlines()[-1]


def test_texts_of_other_reviews_with_the_same_ids_are_not_shown(trained_job, synthetic_csv, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(trained_job, job)
    metrics = json.loads((job / "metrics.json").read_text())
    assert not pathlib.Path(metrics["evaluated_weights"]).is_absolute()  # a copied job evaluates its own weights
    frame = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False, on_bad_lines="skip")
    frame["Time"] = "946684800"  # the same Ids, other reviews
    impostor = tmp_path / "impostor.csv"
    frame.to_csv(impostor, index=False)
    result = run_module("trainer.evaluate", "--job-dir", str(job), "--raw-input", str(impostor))
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "holds the texts of 0 of the" in result.stderr and "another Score or Time" in result.stderr
    mistakes = evaluation_of(job)["false_positives"] + evaluation_of(job)["false_negatives"]
    assert mistakes and all(m["text"] is None for m in mistakes)


def test_evaluate_on_a_job_dir_being_written_is_refused(trained_job, tmp_path, capsys):
    from trainer import evaluate

    job = tmp_path / "job"
    shutil.copytree(trained_job, job)
    before = (job / "metrics.json").read_text()
    with lock_holder(job) as holder:
        assert evaluate.main(["--job-dir", str(job)]) == 2
    assert_one_line_error(capsys.readouterr().err, "evaluate", f"{job} is being written by test holder (pid {holder.pid}")
    assert (job / "metrics.json").read_text() == before


def test_a_full_disk_while_writing_the_report_is_a_one_line_error(trained_job, tmp_path, capsys, monkeypatch):
    import errno

    from trainer import artifacts, evaluate

    job = tmp_path / "job"
    shutil.copytree(trained_job, job)
    before = (job / "metrics.json").read_text()

    def full_disk(path, content):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(artifacts, "write_whole", full_disk)
    assert evaluate.main(["--job-dir", str(job)]) == 2
    assert_one_line_error(capsys.readouterr().err, "evaluate", f"cannot write the evaluation report in {job}/evaluation: "
                          "no space left on device")
    assert (job / "metrics.json").read_text() == before  # metrics.json is whole: the old one


def test_a_read_only_job_dir_is_a_one_line_error_for_evaluate(trained_job, tmp_path):
    with mounted_tmpfs(tmp_path / "ro", "4m") as mount:
        job = mount / "job"
        shutil.copytree(trained_job, job)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        result = run_main("trainer.evaluate", "--job-dir", str(job))
        assert result.returncode == 2
        assert_one_line_error(result.stderr, "evaluate", "read-only file system")
