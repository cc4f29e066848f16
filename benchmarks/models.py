"""Every project model beside a scikit-learn TF-IDF reference, on real reviews.

    python benchmarks/models.py [--sets sample extra both] [--models lstm1 tfidf ...]
                                [--kept-stopwords-models tfidf fasttext] [--seeds 3] [--batch-size 256]

Sets (real reviews only; resampled copies repeat texts across splits and say
nothing about quality): `sample`, the first 5,000 rows of Reviews.csv;
`extra`, the 10,842 rows of Reviews_extra.csv (a biased subset: longer, more
positive reviews); `both`, the two files as one input. Each is preprocessed
once by pipelines.preprocess (the time split of the notebook), then:

- reference: scikit-learn TfidfVectorizer (lower-cased, HTML tags and entities
  removed, letters only, no stopword removal, word 1-2-grams, sublinear_tf,
  min_df=2) + LogisticRegression(C=16), fit on the train split's reviews (ids
  from the preprocessing output, texts from the raw CSV), scored on the test
  split. Deterministic: one run.
- every project model through trainer.task with its own recipe (epochs, step
  size, early stopping), --seeds runs each (seeds 1..N), on the default
  preprocessing (the notebook's: stopwords dropped);
- the bag-of-n-gram models again on the same set preprocessed with
  --keep-stopwords (rows "MODEL +stopwords"): the reference keeps stopwords,
  and "too sweet", "but", "very" carry sentiment.

Reports test accuracy, AUC, negative-class F1, macro-F1, parameters and
training seconds (mean ± half the spread over seeds). Target (issue #10): on
each set the best project model's mean AUC is at least the reference's minus
0.005, and every model beyond the notebook's has a mean AUC above lstm1's.
Writes benchmarks/results/models.json.
"""
import argparse
import glob
import json
import re
import time

from common import REPO, WORK, mean_and_spread, python, timed_command, write_result

SHARED = REPO.parent / "shared" / "data"
SETS = {"sample": "Reviews_sample.csv", "extra": "Reviews_extra.csv", "both": "Reviews_{sample,extra}.csv"}
MODELS = ("lstm1", "lstm2", "bilstm", "fasttext", "tfidf")
FIGURES = ("test_accuracy", "test_auc", "test_f1_negative", "test_macro_f1", "train_seconds")


def input_pattern(name: str) -> str:
    pattern = SETS[name]
    return str(SHARED / (pattern.replace("{sample,extra}", "*") if "{" in pattern else pattern))


def prepared(name: str, keep_stopwords: bool = False):
    out = WORK / f"prep_real_{name}{'_stopwords' if keep_stopwords else ''}"
    if not (out / "report.json").exists():
        timed_command([python(), "-m", "pipelines.preprocess", "--input", input_pattern(name), "--output", str(out), "--overwrite",
                       f"--keep-stopwords={str(keep_stopwords).lower()}"])
    return out


def split_ids_and_labels(prep_dir) -> dict:
    """{split: (review ids, labels)} read back from the TFRecords."""
    from trainer import data

    spec = data.data_spec(str(prep_dir))
    splits = {split: data.split_features(spec, split) for split in data.SPLITS}
    return {split: (columns["review_id"], columns["label"]) for split, columns in splits.items()}


def raw_texts(name: str) -> dict:
    import pandas as pd

    texts = {}
    for path in sorted(glob.glob(input_pattern(name))):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["Id", "Text"])
        texts.update(zip(frame["Id"].astype(int), frame["Text"]))
    return texts


def reference_text(text: str) -> str:
    """Lower-cased, HTML tags and entities removed, letters only (no stopword removal)."""
    text = re.sub(r"<[^>]*>", " ", text.lower())
    text = re.sub(r"&(?:[a-z]+|#[0-9]+|#x[0-9a-f]+);", " ", text)
    return re.sub(r"[^a-z]+", " ", text)


def reference_run(splits: dict, texts: dict) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from trainer.evaluation import binary_metrics

    (train_ids, train_labels), (test_ids, test_labels) = splits["train"], splits["test"]
    started = time.perf_counter()
    vectorizer = TfidfVectorizer(preprocessor=reference_text, ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform([texts[i] for i in train_ids])
    classifier = LogisticRegression(C=16, max_iter=2000).fit(features, train_labels)
    seconds = time.perf_counter() - started
    probabilities = classifier.predict_proba(vectorizer.transform([texts[i] for i in test_ids]))[:, 1]
    metrics = binary_metrics(test_labels, probabilities)
    return {**metrics, "params": int(classifier.coef_.size + 1), "train_seconds": seconds}


def project_run(prep_dir, name: str, model: str, seed: int, epochs: int | None, batch_size: int) -> dict:
    job = WORK / f"job_models_{name}_{prep_dir.name}_{model}_seed{seed}"
    seconds = timed_command([python(), "-m", "trainer.task", "--data", str(prep_dir), "--job-dir", str(job), "--overwrite",
                             "--model", model, "--batch-size", str(batch_size), "--seed", str(seed),
                             *(["--epochs", str(epochs)] if epochs else [])])
    metrics = json.loads((job / "metrics.json").read_text())
    return {"seed": seed, "train_seconds": seconds, **{key: metrics.get(key) for key in (
        "test_accuracy", "test_auc", "test_f1_negative", "test_macro_f1", "params", "epochs", "best_epoch",
        "seconds_per_epoch", "learning_rate", "early_stopping_patience")}}


def verdict(row: dict) -> dict:
    means = {model: s["summary"]["test_auc"]["mean"] for model, s in row["models"].items()}
    best = max(means, key=means.get)
    beyond = {m: means[m] > means["lstm1"] for m in means if m not in ("lstm1", "lstm2")} if "lstm1" in means else {}
    return {"best_model": best, "best_mean_auc": means[best], "reference_auc": row["reference"]["test_auc"],
            "best_within_0_005_of_reference": means[best] >= row["reference"]["test_auc"] - 0.005,
            "above_lstm1": beyond}


def table(name: str, row: dict) -> str:
    def cell(s: dict, key: str, scale: float = 1.0, digits: int = 4) -> str:
        return f"{scale * s[key]['mean']:.{digits}f} ± {scale * s[key]['spread'] / 2:.{digits}f}"

    ref = row["reference"]
    lines = [f"{name}: {row['examples']['train']:,} train / {row['examples']['val']:,} val / {row['examples']['test']:,} test reviews",
             "| model | test accuracy | test AUC | F1 negative | macro-F1 | params | train s |", "|---|---|---|---|---|---|---|",
             f"| scikit-learn TF-IDF + LR (reference) | {100 * ref['test_accuracy']:.2f} | {ref['test_auc']:.4f} | "
             f"{ref['test_f1_negative']:.4f} | {ref['test_macro_f1']:.4f} | {ref['params']:,} | {ref['train_seconds']:.1f} |"]
    for model, result in row["models"].items():
        s = result["summary"]
        lines.append(f"| {model} | {cell(s, 'test_accuracy', 100, 2)} | {cell(s, 'test_auc')} | {cell(s, 'test_f1_negative')} | "
                     f"{cell(s, 'test_macro_f1')} | {result['runs'][0]['params']:,} | {cell(s, 'train_seconds', digits=0)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", choices=tuple(SETS), default=list(SETS))
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS),
                        help="models to (re)run; a set's other rows are kept from the last results")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--kept-stopwords-models", nargs="*", choices=MODELS, default=["tfidf", "fasttext"],
                        help="models also trained on the set preprocessed with --keep-stopwords")
    parser.add_argument("--epochs", type=int, default=None, help="default: each model's recipe")
    parser.add_argument("--batch-size", type=int, default=256, help="small real sets: 2048 would be 2-20 steps an epoch")
    args = parser.parse_args()
    missing = [SETS[name] for name in args.sets if not glob.glob(input_pattern(name))]
    if missing:
        raise SystemExit(f"models.py: {', '.join(missing)} not found under {SHARED}: this benchmark needs the real reviews")
    previous = WORK.parent / "results" / "models.json"
    result = json.loads(previous.read_text()).get("sets", {}) if previous.exists() else {}
    for name in args.sets:
        prep_dir = prepared(name)
        splits = split_ids_and_labels(prep_dir)
        row = {"epochs": args.epochs or "recipe", "batch_size": args.batch_size, "seeds": args.seeds,
               "examples": {split: int(len(ids)) for split, (ids, _) in splits.items()},
               "reference": reference_run(splits, raw_texts(name)),
               "models": dict(result.get(name, {}).get("models", {}))}  # rows not re-run are kept
        kept_dir = prepared(name, keep_stopwords=True) if args.kept_stopwords_models else None
        if kept_dir:  # the same time split; only reviews of stopwords alone (dropped by default) may be added
            kept_test = set(split_ids_and_labels(kept_dir)["test"][0].tolist())
            if not set(splits["test"][0].tolist()) <= kept_test:
                raise SystemExit(f"models.py: {name}: the --keep-stopwords preprocessing split the reviews differently")
            row["kept_stopwords_extra_test_reviews"] = len(kept_test) - len(splits["test"][0])
        trials = [(model, model, prep_dir) for model in args.models]
        trials += [(f"{model} +stopwords", model, kept_dir) for model in args.kept_stopwords_models]
        for label, model, data_dir in trials:
            runs = [project_run(data_dir, name, model, seed, args.epochs, args.batch_size) for seed in range(1, args.seeds + 1)]
            row["models"][label] = {"runs": runs, "summary": mean_and_spread(runs, FIGURES)}
            print(f"  {name} {label}: test AUC {row['models'][label]['summary']['test_auc']['mean']:.4f}", flush=True)
        row["verdict"] = verdict(row)
        result[name] = row
        print(table(name, row))
        print(f"  verdict: {row['verdict']}\n", flush=True)
    print(f"wrote {write_result('models', {'sets': result})}")


if __name__ == "__main__":
    main()
