"""benchmarks/check_docs.py: the figures of docs/benchmarks.md are those of benchmarks/results/."""
import importlib.util
import json

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("check_docs", REPO / "benchmarks" / "check_docs.py")
check_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_docs)


def test_every_figure_in_the_benchmarks_page_is_in_its_results():
    text = check_docs.DOC.read_text()
    assert sum(1 for _ in check_docs.tables(text)) >= 10  # the tables were found, not skipped
    assert check_docs.unmatched_figures(text) == []


def test_a_figure_that_differs_from_its_results_is_reported():
    # A table of the notebook's full-size run, as its results file has it, then one tenth off.
    seconds = json.loads((check_docs.RESULTS / "preprocess_568454.json").read_text())["seconds"]["notebook"]
    table = "<!-- figures: preprocess_568454.json -->\n| way | seconds |\n|---|---:|\n| notebook | {:.1f} |\n"
    assert check_docs.unmatched_figures(table.format(seconds)) == []
    problems = check_docs.unmatched_figures(table.format(seconds + 0.1))
    assert len(problems) == 1 and f"{seconds + 0.1:.1f}" in problems[0]


def test_a_table_naming_a_missing_results_file_is_reported():
    text = "<!-- figures: nowhere.json -->\n| run | seconds |\n|---|---:|\n| one | 1.0 |\n"
    assert check_docs.unmatched_figures(text) == ["line 2: no results file nowhere.json"]
