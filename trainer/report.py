"""JOB/evaluation/report.html: one self-contained page (pictures embedded as
PNG data URIs, no script, no network) that answers what people ask after
training: how well does the model rank and where does it fail, is 0.5 the right
threshold, are its probabilities calibrated, which reviews does it get most
confidently wrong.

The curves are scikit-learn's displays (RocCurveDisplay, PrecisionRecallDisplay,
CalibrationDisplay, ConfusionMatrixDisplay) drawn by matplotlib; the numbers
come from trainer.evaluation.
"""
import base64
import html
import io

import numpy as np

NAMES = ("negative", "positive")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_of(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return buffer.getvalue()


def ranking_png(labels: np.ndarray, probabilities: np.ndarray) -> bytes:
    """ROC, and precision-recall for each class (the negative one is the minority)."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    figure, (roc, pr) = _pyplot().subplots(1, 2, figsize=(10, 4.2))
    RocCurveDisplay.from_predictions(labels, probabilities, ax=roc, name="model", plot_chance_level=True)
    roc.set_title("ROC curve (test)")
    PrecisionRecallDisplay.from_predictions(labels, probabilities, ax=pr, name="positive class", pos_label=1)
    PrecisionRecallDisplay.from_predictions(labels, 1 - probabilities, ax=pr, name="negative class", pos_label=0)
    pr.set_title("precision-recall of each class (test)")
    pr.set_xlabel("recall")
    pr.set_ylabel("precision")
    for axes in (roc, pr):
        axes.grid(alpha=0.3)
    return png_of(figure)


def calibration_png(labels: np.ndarray, probabilities: np.ndarray) -> bytes:
    """The reliability diagram, and the scores of each class (where they overlap is where errors are)."""
    from sklearn.calibration import CalibrationDisplay

    figure, (reliability, scores) = _pyplot().subplots(1, 2, figsize=(10, 4.2))
    CalibrationDisplay.from_predictions(labels, probabilities, n_bins=10, ax=reliability, name="model")
    reliability.set_title("reliability (test, 10 equal-width bins)")
    bins = np.linspace(0, 1, 21)
    for label, name in enumerate(NAMES):
        scores.hist(probabilities[labels == label], bins=bins, alpha=0.6, density=True, label=f"{name} reviews")
    scores.set_xlabel("predicted probability of positive")
    scores.set_ylabel("density")
    scores.set_title("scores by true class (test)")
    scores.legend()
    for axes in (reliability, scores):
        axes.grid(alpha=0.3)
    return png_of(figure)


def confusion_png(labels: np.ndarray, probabilities: np.ndarray, thresholds: list[float]) -> bytes:
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, panels = _pyplot().subplots(1, len(thresholds), figsize=(4.6 * len(thresholds), 4))
    for axes, threshold in zip(np.atleast_1d(panels), thresholds):
        predicted = (probabilities >= threshold).astype(np.int64)
        ConfusionMatrixDisplay.from_predictions(labels, predicted, labels=[0, 1], display_labels=NAMES, ax=axes,
                                                colorbar=False, values_format="d", cmap="Blues")
        axes.set_title(f"test, threshold {threshold:.4f}")
    return png_of(figure)


def history_png(history: list[dict], best_epoch: int) -> bytes:
    """Loss and accuracy per epoch, train against validation, the evaluated epoch marked."""
    from matplotlib.ticker import MaxNLocator

    figure, panels = _pyplot().subplots(1, 2, figsize=(10, 4))
    epochs = [e["epoch"] for e in history]
    for axes, metric, title in zip(panels, ("loss", "accuracy"), ("binary cross-entropy", "accuracy")):
        axes.plot(epochs, [e.get(metric) for e in history], "o-", label=f"train {metric}")
        axes.plot(epochs, [e.get(f"val_{metric}") for e in history], "o-", label=f"validation {metric}")
        if best_epoch:
            axes.axvline(best_epoch, color="grey", linestyle=":", label=f"evaluated epoch {best_epoch}")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend()
    return png_of(figure)


# ------------------------------------------------------------------ HTML

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text { text-align: left; max-width: 620px; }
tr.chosen td { background: #fff6d5; font-weight: 600; }
img { max-width: 100%; } .note { color: #666; font-size: 0.9em; }
"""


def fmt(value, spec: str = ".4f") -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and np.isnan(value):
        return "–"
    return format(value, spec) if isinstance(value, (int, float)) else html.escape(str(value))


def table(table_id: str, header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        body.append(f"<tr{css}>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def image(image_id: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{image_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def summary_rows(summary: dict) -> list[list[str]]:
    rows = []
    for name, metrics in (("0.5 (the export's label)", summary["at_0.5"]), ("chosen on validation", summary["at_chosen"])):
        rows.append([name, fmt(metrics["threshold"], ".4f"), fmt(metrics["accuracy"], ".2%"), fmt(metrics["negative"]["f1"]),
                     fmt(metrics["positive"]["f1"]), fmt(metrics["macro_f1"])])
    return rows


def threshold_rows(rows: list[dict]) -> list[list[str]]:
    cells = []
    for row in rows:
        cells.append([fmt(row["threshold"], ".4f"), fmt(row["accuracy"], ".2%"),
                      *(fmt(row[name][metric]) for name in NAMES for metric in ("precision", "recall", "f1")),
                      fmt(row["macro_f1"])])
    return cells


def slice_rows(slicing: dict) -> list[list[str]]:
    return [[html.escape(name), fmt(m["examples"], ","), fmt(m["positive"], ","), fmt(m["accuracy"], ".2%"), fmt(m["auc"]),
             fmt(m["f1_negative"])] for name, m in slicing.items()]


def error_rows(errors: list[dict]) -> list[list[str]]:
    if not errors:
        return [['<td class="text" colspan="5">none: no review of this class is on the wrong side of 0.5</td>']]
    rows = []
    for error in errors:
        text = error.get("text")
        shown = html.escape(text[:600] + ("…" if len(text) > 600 else "")) if text is not None else \
            '<span class="note">text not given (pass --raw-input)</span>'
        rows.append([fmt(error["review_id"], "d"), fmt(error["probability"], ".4f"), fmt(error.get("year"), "d"),
                     fmt(error["num_words"], "d"), f'<td class="text">{shown}</td>'])
    return rows


def report_html(evaluation: dict, slices: dict, pictures: dict[str, bytes]) -> str:
    """The whole page; `pictures`: name → PNG bytes, for the figures above."""
    chosen = evaluation["chosen_threshold"]
    table_rows = evaluation["threshold_table"]
    calibration = evaluation["calibration"]
    header = ["threshold", "accuracy", *(f"{n} {m}" for n in NAMES for m in ("precision", "recall", "F1")), "macro-F1"]
    slice_header = ["slice", "examples", "positive", "accuracy", "AUC", "F1 negative"]
    error_header = ["review id", "probability", "year", "words", "text"]
    sections = [
        f"<h1>{html.escape(evaluation['model'])}: evaluation on the test split</h1>",
        f'<p class="note">job {html.escape(evaluation["job_dir"])} · data {html.escape(evaluation["data"])} · '
        f'{evaluation["test_examples"]:,} test reviews, {evaluation["val_examples"]:,} validation reviews · '
        f'evaluated epoch {evaluation["evaluated_epoch"]} · AUC {fmt(evaluation["test_auc"])}</p>',
        "<h2 id='summary'>Summary</h2>",
        table("summary-table", ["threshold", "value", "accuracy", "F1 negative", "F1 positive", "macro-F1"],
              summary_rows(evaluation)),
        f"<p>The threshold that maximises macro-F1 on the <b>validation</b> split is {chosen['threshold']:.4f} "
        f"(validation macro-F1 {chosen['val_macro_f1']:.4f}); the row above gives its <b>test</b> metrics. "
        "Accuracy mostly reflects the class balance; the F1 of the negative class does not.</p>",
        "<h2 id='ranking'>Ranking: ROC and precision-recall</h2>",
        image("roc-pr", pictures["ranking"], "ROC and precision-recall curves"),
        "<h2 id='calibration'>Calibration</h2>",
        image("calibration", pictures["calibration"], "reliability diagram and score histograms"),
        f"<p>Expected calibration error {calibration['expected_calibration_error']:.4f}, Brier score "
        f"{calibration['brier_score']:.4f} (10 equal-width bins).</p>",
        "<h2 id='confusion'>Confusion matrices</h2>",
        image("confusion", pictures["confusion"], "confusion matrices at 0.5 and at the chosen threshold"),
        "<h2 id='thresholds'>Thresholds (test)</h2>",
        table("threshold-table", header, threshold_rows(table_rows),
              ["chosen" if abs(r["threshold"] - chosen["threshold"]) < 1e-12 else "" for r in table_rows]),
        "<h2 id='training'>Training curves</h2>",
        image("history", pictures["history"], "loss and accuracy per epoch"),
        "<h2 id='slices'>Slices (test, threshold 0.5)</h2>",
        "<h3>Words per review (after cleaning, before padding)</h3>",
        table("slices-length", slice_header, slice_rows(slices["words_per_review"])),
    ]
    if "year" in slices:
        sections += ["<h3>Year of the review</h3>", table("slices-year", slice_header, slice_rows(slices["year"]))]
    else:
        sections.append('<p class="note">No year slicing: this data was preprocessed before the TFRecords carried '
                        "each review's time.</p>")
    sections += [
        "<h2 id='errors'>Most confident mistakes (test)</h2>",
        '<p class="note">Texts as written in the raw input, markup included.</p>',
        "<h3>False positives: negative reviews scored most positive</h3>",
        table("false-positives", error_header, error_rows(evaluation["false_positives"])),
        "<h3>False negatives: positive reviews scored most negative</h3>",
        table("false-negatives", error_header, error_rows(evaluation["false_negatives"])),
    ]
    body = "\n".join(sections)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(evaluation['model'])} "
            f"evaluation</title><style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")
