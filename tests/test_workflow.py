"""deploy.workflow: the local run (push, gate, lineage, a push that dies) and
the compiled KFP pipeline, both made from the one list of steps."""
import csv
import hashlib
import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from deploy import DeployError, serving, vertex, workflow
from deploy.workflow import gate as gating
from deploy.workflow import pipeline
from deploy.workflow.__main__ import main as workflow_main
from tests.conftest import run_main, REPO, TINY_LENGTH, TINY_VOCAB, assert_one_line_error, lock_holder, raced, run_module
from tests.test_preprocess import read_split

PREPROCESS = ["--vocab-size", str(TINY_VOCAB), "--max-length", str(TINY_LENGTH), "--num-shards", "2"]
TRAINER = ["--epochs", "2", "--batch-size", "64", "--steps-per-epoch", "6"]


def tree_state(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def lineage_of(work: pathlib.Path, run_id: str) -> dict:
    return json.loads((work / "runs" / run_id / "lineage.json").read_text())


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, synthetic_csv):
    """A first run, pushed; then a deliberately weak one (a tiny step size), not pushed."""
    work = tmp_path_factory.mktemp("workflow")
    first = ["run", "--input", str(synthetic_csv), "--work-dir", str(work), "--run-id", "first", *PREPROCESS, *TRAINER,
             "--learning-rate", "0.01"]
    assert workflow_main(first) == 0
    served_before = tree_state(work / "serving")
    weak = run_module("deploy.workflow", "run", "--input", str(synthetic_csv), "--work-dir", str(work), "--run-id", "weak",
                      *PREPROCESS, *TRAINER, "--learning-rate", "0.00001")
    return work, served_before, weak


@pytest.mark.slow
def test_the_first_model_is_pushed_in_tf_servings_layout(two_runs):
    work, _, _ = two_runs
    blessing = json.loads((work / "runs" / "first" / "blessing.json").read_text())
    assert blessing["blessed"] is True and blessing["baseline"] is None
    assert blessing["metrics"]["candidate_auc"] >= workflow.DEFAULT_AUC_FLOOR
    version = work / "serving" / "1"
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir()
    pushed = json.loads((version / "assets.extra" / "push.json").read_text())
    assert pushed["run_id"] == "first" and pushed["blessing"] == blessing
    # The served export is the candidate's, byte for byte.
    candidate = pathlib.Path(blessing["candidate"])
    assert {k: v for k, v in tree_state(version).items() if not k.startswith("assets.extra/push") and
            not k.endswith("seen_reviews.txt")} == tree_state(candidate)
    prep = work / "runs" / "first" / "prep"
    seen = sorted((int(r["review_id"]), int(r["time"])) for split in ("train", "val") for r in read_split(prep, split))
    assert [tuple(map(int, line.split())) for line in (version / gating.SEEN_REVIEWS).read_text().splitlines()] == seen


@pytest.mark.slow
def test_a_worse_candidate_is_not_pushed_and_serving_is_untouched(two_runs):
    work, served_before, weak = two_runs
    assert weak.returncode == 0 and "Traceback" not in weak.stderr
    last = weak.stdout.strip().splitlines()[-1]
    assert last.startswith("run weak: not blessed: candidate AUC ") and last.endswith("nothing pushed")
    assert tree_state(work / "serving") == served_before
    blessing = json.loads((work / "runs" / "weak" / "blessing.json").read_text())
    assert blessing["blessed"] is False and blessing["baseline"] == str(work / "serving" / "1")
    assert blessing["metrics"]["candidate_auc"] < blessing["metrics"]["baseline_auc"] - blessing["tolerance"]
    steps = lineage_of(work, "weak")["steps"]
    assert [s["name"] for s in steps] == list(workflow.STEP_NAMES) and "skipped" in steps[-1]


@pytest.mark.slow
def test_the_gate_compares_both_models_on_test_reviews_the_served_one_never_trained_on(two_runs, synthetic_csv):
    work, _, _ = two_runs
    blessing = json.loads((work / "runs" / "weak" / "blessing.json").read_text())
    test = {(int(r["review_id"]), int(r["time"])) for r in read_split(work / "runs" / "weak" / "prep", "test")}
    seen = {tuple(map(int, line.split())) for line in (work / "serving" / "1" / gating.SEEN_REVIEWS).read_text().splitlines()}
    assert blessing["reviews"]["candidate_test"] == len(test)
    assert blessing["reviews"]["seen_by_served_model"] == len(test & seen)  # 0 here: the same time split
    assert blessing["reviews"]["compared"] == len(test - seen)
    # The same decision with the gate's options changed: tolerance and floor are what decide.
    config = gating.GateConfig(run_dir=str(work / "runs" / "weak"), serving_dir=str(work / "serving"), input=str(synthetic_csv),
                               auc_tolerance=1.0, auc_floor=0.0)
    assert gating.blessing_of(config)["blessed"] is True
    strict = gating.GateConfig(run_dir=str(work / "runs" / "first"), serving_dir=str(work / "serving"), input=str(synthetic_csv),
                               auc_tolerance=1.0, auc_floor=0.99)
    assert "below the floor 0.99" in gating.blessing_of(strict)["reason"]


@pytest.mark.slow
def test_lineage_records_every_step_with_digests_that_follow_the_input(two_runs, synthetic_csv, tmp_path):
    work, _, _ = two_runs
    first, weak = lineage_of(work, "first"), lineage_of(work, "weak")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert first["code"]["git_commit"] == head and first["code"]["version"]
    for step in first["steps"]:
        assert step["exit_status"] == 0 and step["started"] <= step["ended"] and step["arguments"]
        assert all("sha256" in entry or "examples_sha256" in entry for entry in step["outputs"])
    raw = first["steps"][0]["inputs"][0]
    assert raw["sha256"] == hashlib.sha256(synthetic_csv.read_bytes()).hexdigest() and raw["bytes"] == synthetic_csv.stat().st_size
    prep = first["steps"][0]["outputs"][0]
    report = json.loads((work / "runs" / "first" / "prep" / "report.json").read_text())
    assert prep["records"] == report["examples"]  # counted by reading the TFRecords
    # Same input, same preprocessing: the same data digests (run to run, the examples are the same).
    assert weak["steps"][0]["inputs"] == first["steps"][0]["inputs"]
    assert weak["steps"][0]["outputs"][0]["examples_sha256"] == prep["examples_sha256"]
    assert weak["steps"][1]["outputs"][0]["sha256"] != first["steps"][1]["outputs"][0]["sha256"]  # another model

    # One review changed: every digest downstream of it changes.
    rows = list(csv.reader(synthetic_csv.open(newline="", encoding="utf-8")))
    row = next(r for r in rows[1:] if r[6] == "5")
    row[9] = row[9] + " Also the bag was torn."
    changed = tmp_path / "changed.csv"
    with changed.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    from deploy.workflow import lineage

    assert lineage.described(str(changed))["sha256"] != raw["sha256"]
    out = tmp_path / "prep"
    from pipelines import preprocess

    assert preprocess.main(["--input", str(changed), "--output", str(out), *PREPROCESS]) == 0
    described = lineage.described_prep(str(out))
    assert described["records"] == prep["records"]
    assert described["examples_sha256"] != prep["examples_sha256"]


@pytest.mark.slow
def test_a_push_that_dies_midway_leaves_no_version_in_serving(two_runs, synthetic_csv, monkeypatch):
    work, _, _ = two_runs
    config = gating.GateConfig(run_dir=str(work / "runs" / "first"), serving_dir=str(work / "serving"), input=str(synthetic_csv),
                               auc_tolerance=1.0, auc_floor=0.0)
    with pytest.raises(DeployError, match="run the gate again"):  # its blessing predates serving/1
        gating.pushed_version(config, "first")
    assert gating.gate(config)["blessed"] is True  # against serving/1 now
    before = gating.versions(config.serving_dir)
    copied = []
    real_copy = tf.io.gfile.copy

    def dying_copy(source, target, overwrite=False):
        if len(copied) == 3:
            raise KeyboardInterrupt  # as a kill would, part-way through the files
        copied.append(source)
        real_copy(source, target, overwrite)

    monkeypatch.setattr(tf.io.gfile, "copy", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        gating.pushed_version(config, "again")
    assert gating.versions(config.serving_dir) == before  # TF Serving sees nothing new
    leftovers = [p for p in (work / "serving").iterdir() if p.name.startswith(gating.INCOMING)]
    assert leftovers and not any(p.name.isdigit() for p in leftovers)
    monkeypatch.setattr(tf.io.gfile, "copy", real_copy)
    version = gating.pushed_version(config, "again")
    assert version == str(work / "serving" / str(before[-1] + 1)) and (pathlib.Path(version) / "saved_model.pb").exists()
    assert not [p for p in (work / "serving").iterdir() if p.name.startswith(gating.INCOMING)]
    with pytest.raises(DeployError, match="run the gate again"):  # the same blessing never pushes twice
        gating.pushed_version(config, "again")


@pytest.mark.slow
def test_a_finished_run_id_is_refused_and_an_interrupted_run_resumes(two_runs, synthetic_csv, tmp_path, monkeypatch):
    work, _, _ = two_runs
    lineage_before = (work / "runs" / "first" / "lineage.json").read_text()
    result = run_module("deploy.workflow", "run", "--input", str(synthetic_csv), "--work-dir", str(work), "--run-id", "first",
                        *PREPROCESS, *TRAINER, "--learning-rate", "0.01")
    assert result.returncode == 2 and "run first in" in result.stderr and "is finished" in result.stderr
    assert (work / "runs" / "first" / "lineage.json").read_text() == lineage_before

    from deploy.workflow import local

    real_main = local.step_main

    def interrupted_in_training(step):
        if step.name == "train":
            def interrupt(_):
                raise KeyboardInterrupt
            return interrupt
        return real_main(step)

    fresh = tmp_path / "work"
    args = ["run", "--input", str(synthetic_csv), "--work-dir", str(fresh), "--run-id", "r", *PREPROCESS, *TRAINER,
            "--learning-rate", "0.01"]
    monkeypatch.setattr(local, "step_main", interrupted_in_training)
    assert workflow_main(args) == 130
    stopped = lineage_of(fresh, "r")["steps"]
    assert [s["name"] for s in stopped] == ["preprocess", "train"] and stopped[1]["interrupted"] is True
    assert not (fresh / "serving").exists()
    monkeypatch.setattr(local, "step_main", real_main)
    assert workflow_main(args) == 0
    steps = lineage_of(fresh, "r")["steps"]
    assert [s["name"] for s in steps] == list(workflow.STEP_NAMES) and steps[0] == stopped[0]  # preprocess not run again
    assert gating.versions(str(fresh / "serving")) == [1]
    other = run_module("deploy.workflow", *[a if a != "0.01" else "0.02" for a in args])
    assert other.returncode == 2 and "was started with other options" in other.stderr


def compiled_spec(tmp_path) -> tuple[dict, pipeline.CloudSettings, workflow.WorkflowOptions]:
    settings = pipeline.CloudSettings(project="p", region="europe-west4", image="europe-west4-docker.pkg.dev/p/r/review-trainer:0.1.0",
                                      root="gs://b/wf", workers=2)
    options = workflow.WorkflowOptions(input="gs://b/Reviews.csv", preprocess_args=("--keep-stopwords",),
                                       trainer_args=("--model", "tfidf", "--epochs", "5"))
    path = tmp_path / "pipeline.json"
    pipeline.compile_to(str(path), settings, options)
    return json.loads(path.read_text()), settings, options


def by_display_name(dag: dict) -> dict:
    return {task["taskInfo"]["name"]: (key, task) for key, task in dag["tasks"].items()}


def constant(task: dict, name: str):
    return task["inputs"]["parameters"][name]["runtimeValue"]["constant"]


def test_the_compiled_pipeline_has_the_local_runs_steps_edges_arguments_and_gate(tmp_path):
    spec, settings, options = compiled_spec(tmp_path)
    root = by_display_name(spec["root"]["dag"])
    condition_key, condition = root[pipeline.BLESSED_CONDITION]
    inner = by_display_name(spec["components"][condition["componentRef"]["name"]]["dag"])
    tasks = {**root, **inner}
    assert set(workflow.STEP_NAMES) <= set(tasks)
    assert {"upload", "endpoint", "deploy", "pushed version"} <= set(inner)
    names = {key: name for name, (key, _) in tasks.items()}
    # Edges: each step after the ones STEPS names; push inside the gate's condition.
    for step in workflow.STEPS:
        key, task = tasks[step.name]
        after = {names[k] for k in task.get("dependentTasks", [])}
        if step.only_if_blessed:
            assert step.name in inner and {names[k] for k in condition["dependentTasks"]} == set(step.after)
        elif step.name == "preprocess":
            assert after == {"preprocess: launch Dataflow"}
        else:
            assert after == set(step.after)
    assert condition["triggerPolicy"]["condition"] == "inputs.parameter_values['pipelinechannel--review-gate-blessed'] == 'true'"
    # Parameters: the raw input and the gate's options, with the compiled defaults.
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == set(pipeline.PARAMETERS)
    assert parameters["input"]["defaultValue"] == options.input and parameters["auc_floor"]["defaultValue"] == options.auc_floor
    # Arguments: what the local run gives each module, with the run's placeholders.
    symbolic = workflow.WorkflowOptions(
        input="{{$.inputs.parameters['pipelinechannel--input']}}", preprocess_args=options.preprocess_args,
        trainer_args=options.trainer_args, auc_tolerance="{{$.inputs.parameters['pipelinechannel--auc_tolerance']}}",
        auc_floor="{{$.inputs.parameters['pipelinechannel--auc_floor']}}")
    paths = workflow.RunPaths(settings.root, "{{$.pipeline_job_uuid}}")
    for step in workflow.STEPS:
        expected = step.arguments(symbolic, paths)
        _, task = tasks[step.name]
        if step.name == "preprocess":
            _, launch = tasks["preprocess: launch Dataflow"]
            assert constant(launch, "parameters") == pipeline.flex_template_parameters(expected) == {
                "input": symbolic.input, "output": paths.prep_dir, "keep_stopwords": "true"}
            assert constant(launch, "container_spec_gcs_path") == "gs://b/wf/templates/review-preprocess.json"
        elif step.name == "train":
            pools = constant(task, "worker_pool_specs")
            assert [p["container_spec"]["args"] for p in pools] == [expected, expected]  # chief and workers
            job = vertex.TrainingJob(project="p", region="europe-west4", image=settings.image, data="", job_dir="", workers=2)
            assert json.loads(json.dumps(pools)) == json.loads(json.dumps(vertex.worker_pool_specs(job, args=expected)))
        else:
            got = [constant(task, f"arg{i:02d}") for i in range(len(expected))]
            assert got == expected, step.name
            executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
            assert executor["container"]["command"] == ["python", "-m", step.module]
            assert executor["container"]["image"] == settings.image
    # What is uploaded is the pushed version, in the serving image.
    _, importer = inner["pushed version"]
    assert importer["inputs"]["parameters"]["uri"]["taskOutputParameter"] == {
        "outputParameterKey": "version", "producerTask": tasks["push"][0]}
    importer_spec = spec["deploymentSpec"]["executors"][spec["components"][importer["componentRef"]["name"]]["executorLabel"]]
    image = importer_spec["importer"]["metadata"]["containerSpec"]["imageUri"]
    assert image == serving.SERVING_IMAGE.uri("europe-west4-docker.pkg.dev/p/r")


@pytest.mark.parametrize("change, message", [
    ({"--root": "/tmp/wf"}, "--root '/tmp/wf' must be a gs:// path"),
    ({"--input": "Reviews.csv"}, "--input 'Reviews.csv' must be a gs:// path"),
    ({"--workers": "0"}, "--workers must be at least 1"),
    ({"--image": "registry/review-trainer"}, "has no tag"),
])
def test_bad_cloud_settings_are_one_line_errors_at_compile_time(tmp_path, change, message):
    flags = {"--project": "p", "--region": "r", "--image": "r-docker.pkg.dev/p/r/review-trainer:1", "--input": "gs://b/R.csv",
             "--root": "gs://b/wf", "--output": str(tmp_path / "p.json"), **change}
    result = run_main("deploy.workflow", "compile", *[item for pair in flags.items() for item in pair])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1] and not (tmp_path / "p.json").exists()


def test_an_existing_endpoint_is_deployed_to_instead_of_a_new_one(tmp_path):
    settings = pipeline.CloudSettings(project="p", region="us-central1", image="r/review-trainer:1", root="gs://b/wf",
                                      endpoint="projects/p/locations/us-central1/endpoints/42")
    path = pipeline.compile_to(str(tmp_path / "p.json"), settings, workflow.WorkflowOptions(input="gs://b/R.csv"))
    spec = json.loads(pathlib.Path(path).read_text())
    inner = by_display_name(spec["components"][by_display_name(spec["root"]["dag"])[pipeline.BLESSED_CONDITION][1]
                                               ["componentRef"]["name"]]["dag"])
    _, endpoint = inner["endpoint"]
    assert endpoint["componentRef"]["name"].startswith("comp-importer")  # the given endpoint, not EndpointCreateOp
    _, deploy = inner["deploy"]
    assert constant(deploy, "traffic_split") == {"0": 100}


def test_submit_dry_run_prints_the_pipeline_job(tmp_path):
    result = run_main("deploy.workflow", "submit", "--project", "p", "--region", "us-central1", "--image",
                        "us-central1-docker.pkg.dev/p/r/review-trainer:0.1.0", "--input", "gs://b/Reviews.csv", "--root",
                        "gs://b/wf", "--output", str(tmp_path / "p.yaml"), "--auc-floor", "0.8", "--dry-run")
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["parameter_values"] == {"input": "gs://b/Reviews.csv", "auc_tolerance": 0.005, "auc_floor": 0.8}
    assert job["template_path"] == str(tmp_path / "p.yaml") and (tmp_path / "p.yaml").exists()
    assert job["pipeline_root"] == "gs://b/wf/pipeline_root"


@pytest.mark.parametrize("args, message", [
    (["--data", "x"], "--data is set by the workflow itself"),
    (["--epochs", "0"], "--epochs must be positive"),
    (["--modle", "tfidf"], "unknown option --modle (did you mean --model?)"),
    (["--vocab-size", "abc"], "invalid int value: 'abc'"),
    (["--vocab-size", "2"], "--vocab-size must be at least 3"),
    (["--test-fraction", "1.5"], "--test-fraction must be in [0, 1)"),
    (["--auc-floor", "2"], "argument --auc-floor: must be between 0 and 1, got 2"),
    (["--auc-tolerance", "nan"], "argument --auc-tolerance: must be between 0 and 1, got nan"),
    (["--run-id", "../escaped"], "--run-id '../escaped': letters, digits"),
])
def test_bad_trainer_options_are_one_line_errors_before_anything_runs(tmp_path, args, message):
    result = run_main("deploy.workflow", "run", "--input", str(REPO / "tests" / "fixtures" / "reviews.csv"),
                        "--work-dir", str(tmp_path / "w"), *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "w").exists()


def test_the_serving_image_serves_with_the_pinned_tensorflow():
    """An export runs on a TensorFlow at least as new as the one that wrote it: the trainer's pin."""
    setup = (REPO / "setup.py").read_text()
    pinned = next(line.split("==")[1].strip('",') for line in setup.splitlines() if line.strip().startswith('"tensorflow=='))
    assert serving.SERVING_IMAGE.tensorflow == pinned
    dockerfile = (REPO / "deploy" / "serving" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in dockerfile and "tensorflow" not in dockerfile.split("RUN", 1)[1].lower()
    assert serving.SERVING_IMAGE.uri("r").endswith(f":tf{pinned}")


# ---------------------------------------------------------------- faults at the edges

def blessed_copies(two_runs, synthetic_csv, folder: pathlib.Path) -> tuple[pathlib.Path, list[str]]:
    """Both runs copied into a fresh work dir and gated against its empty serving
    dir (floor 0: both blessed), as two runs that reach their push at once."""
    work, _, _ = two_runs
    for run_id in ("first", "weak"):
        shutil.copytree(work / "runs" / run_id, folder / "runs" / run_id)
        blessing = gating.gate(gating.GateConfig(run_dir=str(folder / "runs" / run_id), serving_dir=str(folder / "serving"),
                                                 input=str(synthetic_csv), auc_tolerance=1.0, auc_floor=0.0))
        assert blessing["blessed"] and blessing["baseline"] is None
    return folder, ["first", "weak"]


def push_args(folder: pathlib.Path, run_id: str) -> list[str]:
    return ["push", "--run-dir", str(folder / "runs" / run_id), "--serving-dir", str(folder / "serving"), "--run-id", run_id]


@pytest.mark.slow
def test_two_pushes_at_once_make_one_whole_version_labelled_with_its_run(two_runs, synthetic_csv, tmp_path):
    folder, run_ids = blessed_copies(two_runs, synthetic_csv, tmp_path / "work")
    exports = {run_id: tree_state(pathlib.Path(json.loads((folder / "runs" / run_id / "blessing.json").read_text())["candidate"]))
               for run_id in run_ids}
    assert exports["first"] != exports["weak"]
    for attempt in range(4):
        shutil.rmtree(folder / "serving", ignore_errors=True)
        results = raced(tmp_path / f"barrier-{attempt}", *[("deploy.workflow.__main__", *push_args(folder, r)) for r in run_ids])
        statuses = [r.returncode for r in results]
        assert sorted(statuses) == [0, 2], [(r.returncode, r.stderr[-2000:]) for r in results]
        winner = run_ids[statuses.index(0)]
        loser = results[statuses.index(2)]
        assert_one_line_error(loser.stderr, "workflow")
        assert ("is being written by deploy.workflow push of run" in loser.stderr
                or "is served now: run the gate again before pushing" in loser.stderr), loser.stderr
        assert sorted(p.name for p in (folder / "serving").iterdir()) == ["1"]  # no leftover, no second version
        version = folder / "serving" / "1"
        pushed = json.loads((version / gating.PUSHED).read_text())
        served = {k: v for k, v in tree_state(version).items() if k not in (gating.PUSHED, gating.SEEN_REVIEWS)}
        # Labelled with the run whose files it holds, every file of them, and only those.
        assert pushed["run_id"] == winner and served == exports[winner] == pushed["file_sha256"]
        assert pushed["verified_against"] == "lineage.json"


@pytest.mark.slow
def test_a_push_whose_copy_differs_from_the_runs_lineage_pushes_nothing(two_runs, synthetic_csv, tmp_path, capsys):
    folder, _ = blessed_copies(two_runs, synthetic_csv, tmp_path / "work")
    candidate = pathlib.Path(json.loads((folder / "runs" / "first" / "blessing.json").read_text())["candidate"])
    with (candidate / "saved_model.pb").open("ab") as handle:
        handle.write(b"\0")  # changed after the train step recorded it
    assert workflow_main(push_args(folder, "first")) == 2
    assert_one_line_error(capsys.readouterr().err, "workflow", f"the copy of {candidate} differs from its lineage in "
                          "saved_model.pb", "nothing pushed")
    assert list((folder / "serving").iterdir()) == []


@pytest.mark.slow
def test_a_push_onto_a_full_disk_is_a_one_line_error(two_runs, synthetic_csv, tmp_path, capsys, monkeypatch):
    import errno

    folder, _ = blessed_copies(two_runs, synthetic_csv, tmp_path / "work")

    def full_disk_copy(source, target, overwrite=False):
        raise OSError(errno.ENOSPC, "No space left on device", target)

    monkeypatch.setattr(tf.io.gfile, "copy", full_disk_copy)
    assert workflow_main(push_args(folder, "first")) == 2
    assert_one_line_error(capsys.readouterr().err, "workflow", f"cannot write --serving-dir {folder / 'serving'}: "
                          "no space left on device")
    assert gating.versions(str(folder / "serving")) == []


def test_a_run_id_being_run_elsewhere_is_refused_naming_the_holder(synthetic_csv, tmp_path, capsys):
    with lock_holder(tmp_path / "runs" / "busy") as holder:
        assert workflow_main(["run", "--input", str(synthetic_csv), "--work-dir", str(tmp_path), "--run-id", "busy",
                              *PREPROCESS, *TRAINER]) == 2
    assert_one_line_error(capsys.readouterr().err, "workflow", f"{tmp_path}/runs/busy is being written by test holder "
                          f"(pid {holder.pid}")
    assert not (tmp_path / "runs" / "busy").exists()


@pytest.mark.slow
def test_a_run_whose_gate_went_stale_resumes_by_gating_again(two_runs, synthetic_csv, tmp_path):
    # Two runs blessed against no served model; the first pushes; the other's push is refused,
    # and the same command then resumes at the gate, not at the push that cannot succeed.
    folder, _ = blessed_copies(two_runs, synthetic_csv, tmp_path / "work")
    assert workflow_main(push_args(folder, "first")) == 0
    assert workflow_main(push_args(folder, "weak")) == 2  # its gate compared against no served model
    record = lineage_of(folder, "weak")
    record["steps"] = [step for step in record["steps"] if step["name"] != "push"]  # as a refused push leaves it
    (folder / "runs" / "weak" / "lineage.json").write_text(json.dumps(record))
    args = ["run", "--input", str(synthetic_csv), "--work-dir", str(folder), "--run-id", "weak", *PREPROCESS, *TRAINER,
            "--learning-rate", "0.00001"]
    assert workflow_main(args) == 0
    blessing = json.loads((folder / "runs" / "weak" / "blessing.json").read_text())
    assert blessing["baseline"] == str(folder / "serving" / "1")  # gated again, against what is served now
    steps = lineage_of(folder, "weak")["steps"]
    assert [s["name"] for s in steps] == list(workflow.STEP_NAMES)


# ---------------------------------------------------------------- serving what is pushed

@pytest.mark.slow
def test_a_version_pushed_while_serving_is_served_without_a_restart_and_no_request_fails(two_runs, synthetic_csv, tmp_path):
    import threading
    import time

    from reviews.exports import loaded_signature, served
    from tests.conftest import http_json, serving_at

    folder, run_ids = blessed_copies(two_runs, synthetic_csv, tmp_path / "work")
    serving_dir = folder / "serving"
    assert workflow_main(push_args(folder, "first")) == 0
    texts = ["Delicious coffee, fresh and rich.", "Stale, bland and overpriced.", "My dog loves these treats."]
    expected = {run_id: served(loaded_signature(json.loads((folder / "runs" / run_id / "blessing.json").read_text())
                                                ["candidate"]), texts)["probability"] for run_id in run_ids}
    assert np.max(np.abs(expected["first"] - expected["weak"])) > 1e-3  # the answers tell the versions apart
    answers, stop = [], threading.Event()

    def client(number):
        while not stop.is_set():
            answers.append((number, *http_json(httpd, "POST", "/predict", {"instances": texts})))

    with serving_at(model_base_path=str(serving_dir), poll_s=0.1) as httpd:
        assert httpd.versions.served_version == "1"
        clients = [threading.Thread(target=client, args=(number,)) for number in range(4)]
        for thread in clients:
            thread.start()
        # The weak run's blessing predates version 1: gated again (floor 0: blessed), then pushed as version 2.
        gating.gate(gating.GateConfig(run_dir=str(folder / "runs" / "weak"), serving_dir=str(serving_dir),
                                      input=str(synthetic_csv), auc_tolerance=1.0, auc_floor=0.0))
        assert workflow_main(push_args(folder, "weak")) == 0
        deadline = time.monotonic() + 60
        while httpd.versions.served_version != "2" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # requests on the new version too
        stop.set()
        for thread in clients:
            thread.join(60)
        # Version 1 is released on the poller's thread once its last request is done (its release
        # collects garbage, seconds on a loaded machine): UNLOADING until then, END after.
        while httpd.versions.status("1")[0]["state"] != "END":
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        status = http_json(httpd, "GET", "/v1/models/review_sentiment")
        # A folder renamed into place that is not an export: reported, never served.
        broken = serving_dir / ".incoming-3"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        broken.rename(serving_dir / "3")
        while http_json(httpd, "GET", "/v1/models/review_sentiment/versions/3")[0] != 200 or \
                http_json(httpd, "GET", "/v1/models/review_sentiment/versions/3")[1]["model_version_status"][0]["state"] != "END":
            assert time.monotonic() < deadline + 60
            time.sleep(0.05)
        _, third = http_json(httpd, "GET", "/v1/models/review_sentiment/versions/3")
        after_broken = http_json(httpd, "POST", "/predict", {"instances": texts})
        served_after = httpd.versions.served_version
    assert status == (200, {"model_version_status": [
        {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        {"version": "1", "state": "END", "status": {"error_code": "OK", "error_message": ""}}]})
    assert answers and all(code == 200 for _, code, _ in answers), [a for a in answers if a[1] != 200][:3]
    by_version = [(number, next(run_id for run_id in run_ids
                                if np.allclose([p["probability"] for p in reply["predictions"]], expected[run_id], atol=1e-5)))
                  for number, _, reply in answers]
    for number in range(4):  # each client: the old version's answers, then the new one's, never back
        seen = [run_id for n, run_id in by_version if n == number]
        assert seen[0] == "first" and seen[-1] == "weak" and seen == sorted(seen), seen
    entry = third["model_version_status"][0]
    assert entry["state"] == "END" and entry["status"]["error_code"] != "OK" and entry["status"]["error_message"]
    assert served_after == "2" and after_broken[0] == 200
    np.testing.assert_allclose([p["probability"] for p in after_broken[1]["predictions"]], expected["weak"], atol=1e-5)
