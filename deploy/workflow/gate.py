"""The validation gate and the push: a new model is served only if it is at
least as good as the one being served, measured on the same reviews.

Both exports take raw text, so two models with different vocabularies (or
cleaning) are compared on one set: the candidate's test split minus every
review the serving model was fit or selected on (a pushed version keeps the
(Id, Time) of its train and validation reviews in assets.extra/), with texts
from the workflow's raw input and labels from the candidate's TFRecords. The candidate is blessed when its AUC there is at
least the floor and no worse than the serving model's minus the tolerance;
the first model needs the floor only.

Push copies a blessed export to SERVING/.incoming-*, checks the copy against
the digests the run's lineage.json recorded, then renames it to
SERVING/<version>/ (the highest version is the newest blessed model), all
under the serving dir's lock (reviews.locks): two pushes at once are one after
the other, and the second finds the first's version served and is refused.
TF Serving loads only numeric folders, so a push that dies midway leaves
nothing it would serve, and the next push removes the leftover.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from deploy import DeployError
from deploy.workflow.lineage import file_digests, files_under, folder_sha256
from reviews.exports import loaded_signature, numeric_versions as versions, served
from reviews.contract import REVIEW_ID, TIME
from reviews.locks import exclusive_writer
from trainer import artifacts, data, evaluate, evaluation

ASSETS = "assets.extra"
SEEN_REVIEWS = os.path.join(ASSETS, "seen_reviews.txt")  # "Id Time" of each train and validation review
PUSHED = os.path.join(ASSETS, "push.json")
INCOMING = ".incoming-"
SCORING_BATCH = 256


@dataclasses.dataclass(frozen=True)
class GateConfig:
    run_dir: str
    serving_dir: str
    input: str  # the raw reviews the run was preprocessed from: texts for both models
    auc_tolerance: float = 0.005
    auc_floor: float = 0.7

    @property
    def prep_dir(self) -> str:
        return os.path.join(self.run_dir, "prep")

    @property
    def job_dir(self) -> str:
        return os.path.join(self.run_dir, "job")

    @property
    def blessing_path(self) -> str:
        return os.path.join(self.run_dir, "blessing.json")


def serving_version(serving_dir: str) -> str | None:
    """The folder TF Serving serves: the highest numeric version."""
    found = versions(serving_dir)
    return os.path.join(serving_dir, str(found[-1])) if found else None


def candidate_export(job_dir: str) -> str:
    found = versions(os.path.join(job_dir, "export"))
    if not found:
        raise DeployError(f"{job_dir} has no export/<version>/: the train step did not finish")
    return os.path.join(job_dir, "export", str(found[-1]))


def review_keys(columns: dict) -> list[tuple[int, int]]:
    """(Id, Time) per review: an Id alone may name another review in another file."""
    return list(zip(columns[REVIEW_ID].tolist(), columns[TIME].tolist()))


def seen_reviews(version_dir: str) -> set[tuple[int, int]]:
    path = os.path.join(version_dir, SEEN_REVIEWS)
    if not tf.io.gfile.exists(path):
        raise DeployError(f"{version_dir} lacks {SEEN_REVIEWS}: it was not pushed by this workflow, so the reviews it "
                        "was trained on are unknown")
    with tf.io.gfile.GFile(path) as handle:
        return {tuple(map(int, line.split())) for line in handle if line.strip()}


def probabilities_of(export_dir: str, texts: list[str]) -> np.ndarray:
    """Every review's probability, reviews that clean to no words included (both
    models are then judged on the very same reviews)."""
    signature = loaded_signature(export_dir)
    return np.concatenate([served(signature, texts[i:i + SCORING_BATCH])["probability"]
                           for i in range(0, len(texts), SCORING_BATCH)]).astype(np.float64)


def blessing_of(config: GateConfig) -> dict:
    """Scores the candidate (and the serving model) and decides; the result is blessing.json."""
    export = candidate_export(config.job_dir)
    serving = serving_version(config.serving_dir)
    test = data.split_features(data.data_spec(config.prep_dir), "test", (REVIEW_ID, TIME))
    keys, labels = review_keys(test), test["label"]
    seen = seen_reviews(serving) if serving else set()
    shared = np.array([key not in seen for key in keys], bool)
    texts, _ = evaluate.raw_texts(config.input, {key[0]: (int(label), key[1]) for key, label, keep in
                                                 zip(keys, labels.tolist(), shared) if keep})
    found = shared & np.array([key[0] in texts for key in keys], bool)
    ids, labels = test[REVIEW_ID][found], labels[found]
    reviews = [texts[i] for i in ids.tolist()]
    result = {
        "candidate": export,
        "baseline": serving,
        "reviews": {"candidate_test": int(len(shared)), "seen_by_served_model": int((~shared).sum()),
                    "texts_missing": int((shared & ~found).sum()), "compared": int(len(ids)),
                    "positive": int(labels.sum())},
        "tolerance": config.auc_tolerance,
        "floor": config.auc_floor,
        "metric": "auc",
    }
    if len(ids) == 0 or labels.min() == labels.max():
        return {**result, "blessed": False, "metrics": {},
                "reason": f"not blessed: the {len(ids)} reviews the two models can be compared on lack a class"}
    candidate_auc = evaluation.auc_of(labels, probabilities_of(export, reviews))
    metrics = {"candidate_auc": candidate_auc}
    if serving is None:
        blessed = candidate_auc >= config.auc_floor
        why = f"candidate AUC {candidate_auc:.4f} {'≥' if blessed else '<'} floor {config.auc_floor} (no model served yet)"
    else:
        metrics["baseline_auc"] = serving_auc = evaluation.auc_of(labels, probabilities_of(serving, reviews))
        above_floor, kept_up = candidate_auc >= config.auc_floor, candidate_auc >= serving_auc - config.auc_tolerance
        blessed = above_floor and kept_up
        why = (f"candidate AUC {candidate_auc:.4f} against the served version's {serving_auc:.4f} "
               f"(tolerance {config.auc_tolerance}) on {len(ids):,} reviews"
               + ("" if above_floor else f"; below the floor {config.auc_floor}"))
    missing = result["reviews"]["texts_missing"]
    if missing:
        why += f" ({missing:,} test reviews not found in --input: is it the file the run was preprocessed from?)"
    return {**result, "blessed": bool(blessed), "metrics": metrics, "reason": f"{'blessed' if blessed else 'not blessed'}: {why}"}


def gate(config: GateConfig) -> dict:
    result = blessing_of(config)
    artifacts.write_json(config.blessing_path, result)
    return result


def recorded_export_digests(run_dir: str, export: str) -> dict[str, str] | None:
    """The export's file digests as the run's lineage.json recorded them when
    the train step ended (None: no lineage, e.g. a run not made by the workflow)."""
    record = artifacts.read_json(os.path.join(run_dir, "lineage.json")) or {}
    train = next((step for step in record.get("steps", []) if step.get("name") == "train"), {})
    folder = next((entry for entry in train.get("outputs", []) if entry.get("path", "").rstrip("/").endswith("/export")), {})
    if "file_sha256" not in folder:
        return None
    prefix = os.path.basename(export.rstrip("/")) + "/"
    return {name[len(prefix):]: digest for name, digest in folder["file_sha256"].items() if name.startswith(prefix)}


def copied_export(source: str, incoming: str) -> dict[str, str]:
    """Copies the export's files; returns each copy's digest, read back from the copy."""
    for file in files_under(source):
        target = os.path.join(incoming, os.path.relpath(file, source))
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(file, target, overwrite=True)
    return file_digests(incoming)


def pushed_version(config: GateConfig, run_id: str) -> str:
    """Copies the blessed candidate into SERVING/<next version>/ whole, or not at
    all. Under the serving dir's lock: the version is numbered, the copy made,
    checked against the run's lineage and renamed into place by one writer at a
    time, so every version holds the files its push.json names."""
    blessing = artifacts.read_json(config.blessing_path)
    if not blessing or not blessing.get("blessed"):
        raise DeployError(f"{config.run_dir} holds no blessed model ({config.blessing_path}): nothing to push")
    # Read before the lock (seconds at full size): the lock is held only for the push itself.
    spec = data.data_spec(config.prep_dir)
    seen = sorted(key for split in ("train", "val") for key in review_keys(data.split_features(spec, split, (REVIEW_ID, TIME))))
    tf.io.gfile.makedirs(config.serving_dir)
    with exclusive_writer(config.serving_dir, f"deploy.workflow push of run {run_id}"):
        served = serving_version(config.serving_dir)
        if served != blessing["baseline"]:  # pushed already, or another run pushed since this gate ran
            raise DeployError(f"the gate compared against {blessing['baseline'] or 'no served model'}, but {served} is "
                            f"served now: run the gate again before pushing")
        for leftover in tf.io.gfile.listdir(config.serving_dir):  # a push that died midway
            if leftover.startswith(INCOMING):
                tf.io.gfile.rmtree(os.path.join(config.serving_dir, leftover.rstrip("/")))
        version = str((versions(config.serving_dir) or [0])[-1] + 1)
        incoming = os.path.join(config.serving_dir, f"{INCOMING}{version}")
        source = blessing["candidate"]
        recorded = recorded_export_digests(config.run_dir, source)
        expected = file_digests(source) if recorded is None else recorded
        copied = copied_export(source, incoming)
        if copied != expected:
            tf.io.gfile.rmtree(incoming)
            changed = sorted(set(copied) ^ set(expected) | {f for f in copied if copied[f] != expected.get(f)})
            raise DeployError(f"the copy of {source} differs from {'its lineage' if recorded else 'the export'} in "
                            f"{', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}: was the export changed after "
                            "training? nothing pushed")
        with tf.io.gfile.GFile(os.path.join(incoming, SEEN_REVIEWS), "w") as handle:
            handle.write("".join(f"{review_id} {time}\n" for review_id, time in seen))
        # From what was copied (and verified), not from what the run says it made.
        artifacts.write_json(os.path.join(incoming, PUSHED), {
            "run_id": run_id, "run_dir": config.run_dir, "export": source, "sha256": folder_sha256(copied),
            "file_sha256": copied, "verified_against": "lineage.json" if recorded is not None else "the export itself",
            "blessing": blessing})
        final = os.path.join(config.serving_dir, version)
        tf.io.gfile.rename(incoming, final)  # last: only now does TF Serving see a new version
    return final


def version_pushed_by(serving_dir: str, run_id: str) -> str | None:
    """The newest version whose push.json names this run: what this run's push made,
    even when another run pushed after it."""
    for number in reversed(versions(serving_dir)):
        version = os.path.join(serving_dir, str(number))
        if (artifacts.read_json(os.path.join(version, PUSHED)) or {}).get("run_id") == run_id:
            return version
    return None
