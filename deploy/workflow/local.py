"""The workflow on this machine: STEPS run in order, in this process, through
each module's own `main` with the arguments a pipeline task would get.
lineage.json is rewritten after every step, so a run that stops shows how far
it got, and the same run id run again (with the same options) resumes at the
first step that did not finish."""
import logging
import os

import tensorflow as tf

from deploy import DeployError
from deploy.workflow import STEPS, RunPaths, Step, WorkflowOptions, lineage
from trainer import artifacts

LOG = logging.getLogger(__name__)


class StepFailed(Exception):
    def __init__(self, step: str, status: int, run_dir: str = ""):
        super().__init__(f"step {step} failed (exit status {status}); its output is under {run_dir}")
        self.status = status


def step_main(step: Step):
    """The module's command-line entry point, imported only when it runs."""
    if step.module == "pipelines.preprocess":
        from pipelines.preprocess import main
    elif step.module == "trainer.task":
        from trainer.task import main
    elif step.module == "trainer.evaluate":
        from trainer.evaluate import main
    else:
        from deploy.workflow.steps import main
    return main


def described(path: str, seen: dict) -> dict:
    """A path's lineage entry; a folder made by preprocess also gets its TFRecord counts."""
    if path not in seen:
        if not tf.io.gfile.exists(path):
            seen[path] = {"path": path, "exists": False}
        elif tf.io.gfile.exists(os.path.join(path, "transform_fn")):
            seen[path] = lineage.described_prep(path)
        else:
            seen[path] = lineage.described(path)
    return seen[path]


def described_inputs(paths: list[str], seen: dict) -> list[dict]:
    """An input pattern (comma-separated globs) is described file by file."""
    from reviews.paths import matched_files

    entries = []
    for path in paths:
        files = [path] if tf.io.gfile.exists(path) else matched_files(path)
        entries += [described(file, seen) for file in files] or [{"path": path, "exists": False}]
    return entries


def recorded_options(options: WorkflowOptions) -> dict:
    return {"input": options.input, "preprocess_args": list(options.preprocess_args),
            "trainer_args": list(options.trainer_args), "auc_tolerance": options.auc_tolerance, "auc_floor": options.auc_floor}


def stale_blessing(paths: RunPaths) -> bool:
    """A blessing measured against another served version than the one served now
    (another run pushed in between): its push is refused until the gate runs again."""
    from deploy.workflow.gate import serving_version

    blessing = artifacts.read_json(paths.blessing, {})
    return bool(blessing.get("blessed")) and serving_version(paths.serving_dir) != blessing.get("baseline")


def finished_steps(paths: RunPaths, options: WorkflowOptions) -> list[dict]:
    """The steps an earlier start of this run finished, or a refusal."""
    earlier = artifacts.read_json(paths.lineage)
    if earlier is None:
        return []  # new, or stopped before its first step ended
    if earlier["options"] != recorded_options(options):
        raise DeployError(f"run {paths.run_id} in {paths.work_dir} was started with other options: give another --run-id "
                         "(or the same options to resume it)")
    done = []
    for step in earlier["steps"]:
        if step.get("exit_status") != 0 and "skipped" not in step:
            break
        done.append(step)
    if done and done[-1]["name"] == "gate" and stale_blessing(paths):
        LOG.info("another version is served since run %s's gate: the gate runs again", paths.run_id)
        done = done[:-1]
    if len(done) == len(STEPS):
        raise DeployError(f"run {paths.run_id} in {paths.work_dir} is finished ({earlier['steps'][-1]['name']} was its last "
                         "step): give another --run-id")
    return done


def run_workflow(options: WorkflowOptions, paths: RunPaths) -> tuple[dict, str | None]:
    """Runs every step not finished yet; returns the blessing and the version
    pushed (None when not blessed). A step that fails raises StepFailed."""
    done = finished_steps(paths, options)
    tf.io.gfile.makedirs(paths.run_dir)
    record = {"run_id": paths.run_id, "work_dir": paths.work_dir, "options": recorded_options(options),
              "code": lineage.code_version(), "steps": done}
    if done:
        LOG.info("resuming run %s after step %s", paths.run_id, done[-1]["name"])
    seen: dict = {}
    blessing = artifacts.read_json(paths.blessing, {}) if any(s["name"] == "gate" for s in done) else {}
    for step in STEPS[len(done):]:
        if step.only_if_blessed and not blessing.get("blessed"):
            record["steps"].append({"name": step.name, "skipped": "the gate did not bless the candidate"})
            continue
        if step.name == "preprocess" and tf.io.gfile.exists(paths.prep_dir):
            tf.io.gfile.rmtree(paths.prep_dir)  # what an interrupted start left: preprocessing starts over
        arguments = step.arguments(options, paths)
        entry = {"name": step.name, "module": step.module, "arguments": arguments, "started": lineage.now(),
                 "inputs": described_inputs(step.inputs(options, paths), seen)}
        LOG.info("workflow step %s: python -m %s %s", step.name, step.module, " ".join(arguments))
        record["steps"].append(entry)
        try:
            status = step_main(step)(arguments)
        except KeyboardInterrupt:
            entry |= {"ended": lineage.now(), "exit_status": None, "interrupted": True}
            artifacts.write_json(paths.lineage, record)
            raise
        entry |= {"ended": lineage.now(), "exit_status": status}
        if status == 0:
            for path in step.outputs(options, paths):
                seen.pop(path, None)  # written by this step: described anew
            entry["outputs"] = [described(path, seen) for path in step.outputs(options, paths)]
        artifacts.write_json(paths.lineage, record)
        if status != 0:
            raise StepFailed(step.name, status, paths.run_dir)
        if step.name == "gate":
            blessing = artifacts.read_json(paths.blessing, {})
    artifacts.write_json(paths.lineage, record)
    pushed = record["steps"][-1].get("outputs", [{}])[0].get("path") if blessing.get("blessed") else None
    return blessing, pushed
