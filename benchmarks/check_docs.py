"""Checks that every figure in the tables of docs/benchmarks.md is in the results
it names: each table follows a line `<!-- figures: FILE.json [FILE.json ...] -->`
(files under benchmarks/results/), and every number in its cells, the first
column's labels aside, must be a number of those files as printed (rounded to
the digits shown; percentages, MB and ratios of two recorded numbers count).

    python benchmarks/check_docs.py        # prints each figure not found; exit 1 if any
"""
import itertools
import json
import math
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"<!-- figures: (?P<files>[^>]*?) -->")
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
# How a recorded number may be printed: as it is, as a percentage, bytes as MB,
# and a spread over seeds as "± half of it" (benchmarks/models.py, train.py).
SCALES = (1, 100, 1e-6, 1 / 2**20, 0.5, 50)
# Columns that name a row rather than measure it.
LABELS = ("", "model", "data", "way", "batches", "stage (fused)")


def leaves(value) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)] if math.isfinite(value) else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [number for item in items for number in leaves(item)]


def tables(text: str):
    """(line number, the files its marker names, its rows of cells) for each marked table."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        marker = MARKER.search(line)
        if not marker:
            continue
        start = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("|"))
        rows = list(itertools.takewhile(lambda row: row.startswith("|"), lines[start:]))
        header, *cells = [[cell.strip().replace("**", "") for cell in row.strip("|").split("|")] for row in rows[:1] + rows[2:]]
        measured = [i for i, name in enumerate(header) if i and name not in LABELS]
        yield start + 1, marker["files"].split(), [[row[0]] + [row[i] for i in measured] for row in cells]


def printed_as(figure: str, decimals: int, candidates: list[float]) -> bool:
    return any(round(candidate, decimals) == float(figure) for candidate in candidates)


def unmatched_figures(text: str) -> list[str]:
    problems = []
    for line, files, rows in tables(text):
        missing = [name for name in files if not (RESULTS / name).exists()]
        if missing:
            problems.append(f"line {line}: no results file {', '.join(missing)}")
            continue
        recorded = sorted({number for name in files for number in leaves(json.loads((RESULTS / name).read_text()))})
        scaled = [number * scale for number in recorded for scale in SCALES]
        ratios = scaled + [a / b for a, b in itertools.permutations(recorded, 2) if b]  # for figures printed with ×
        for row in rows:
            for cell in row[1:]:
                for match in NUMBER.finditer(cell):
                    figure = match[1].replace(",", "") + (f".{match[2]}" if match[2] else "")
                    ratio = cell[match.end():].lstrip().startswith("×")
                    if not printed_as(figure, len(match[2] or ""), ratios if ratio else scaled):
                        problems.append(f"line {line}: {figure} ({row[0][:50]!r}) is in none of {', '.join(files)}")
    return problems


def main() -> int:
    text = DOC.read_text()
    count = sum(1 for _ in tables(text))
    problems = unmatched_figures(text)
    for problem in problems:
        print(problem)
    print(f"{count} tables checked against benchmarks/results/: {len(problems)} figures not found")
    return 1 if problems or not count else 0


if __name__ == "__main__":
    sys.exit(main())
