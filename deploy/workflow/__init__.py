"""One workflow, on this machine or on Vertex AI Pipelines:
preprocess → train → evaluate → gate → push.

STEPS below is the one list both ways are made from: each step's module, the
steps it follows, and its arguments as a function of the run's paths and
options. `local.py` runs them here, in this process, over the project's own
modules; `pipeline.py` turns the same list into a KFP v2 pipeline whose
tasks run the same modules with the same arguments (Dataflow for
preprocessing, a Vertex AI custom job for training).

Layout under the work directory (local, or gs:// on Vertex AI):
    runs/<run id>/prep/        pipelines.preprocess output
    runs/<run id>/job/         trainer.task job (job/evaluation/: trainer.evaluate's report)
    runs/<run id>/lineage.json what each step read and wrote, with digests
    runs/<run id>/blessing.json the gate's decision
    serving/<version>/         pushed exports only, in TF Serving's layout
"""
import dataclasses
import datetime
import uuid
from typing import Callable

DEFAULT_AUC_TOLERANCE = 0.005
# Modest enough for the notebook's LSTM on a few thousand reviews (0.83-0.89 on
# the real sample after 2-3 epochs); a model near chance (0.5) never passes.
DEFAULT_AUC_FLOOR = 0.7
# Flags the workflow sets itself: a trainer option may not override them.
WORKFLOW_OWNED = ("--data", "--job-dir", "--raw-input", "--evaluation", "--no-evaluation", "--overwrite")


@dataclasses.dataclass(frozen=True)
class RunPaths:
    work_dir: str
    run_id: str

    @property
    def run_dir(self) -> str:
        return f"{self.work_dir}/runs/{self.run_id}"

    @property
    def prep_dir(self) -> str:
        return f"{self.run_dir}/prep"

    @property
    def job_dir(self) -> str:
        return f"{self.run_dir}/job"

    @property
    def serving_dir(self) -> str:
        return f"{self.work_dir}/serving"

    @property
    def lineage(self) -> str:
        return f"{self.run_dir}/lineage.json"

    @property
    def blessing(self) -> str:
        return f"{self.run_dir}/blessing.json"


@dataclasses.dataclass(frozen=True)
class WorkflowOptions:
    input: str
    preprocess_args: tuple[str, ...] = ()  # pipelines.preprocess flags (--vocab-size, --keep-stopwords, ...)
    trainer_args: tuple[str, ...] = ()  # trainer.task flags (--model, --epochs, --learning-rate, ...)
    auc_tolerance: float = DEFAULT_AUC_TOLERANCE
    auc_floor: float = DEFAULT_AUC_FLOOR


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    module: str  # run as `python -m module ARGS`
    after: tuple[str, ...]
    arguments: Callable[[WorkflowOptions, RunPaths], list[str]]
    inputs: Callable[[WorkflowOptions, RunPaths], list[str]]  # what lineage.json describes before it runs
    outputs: Callable[[WorkflowOptions, RunPaths], list[str]]  # and after
    only_if_blessed: bool = False


def gate_arguments(options: WorkflowOptions, paths: RunPaths) -> list[str]:
    return ["gate", "--run-dir", paths.run_dir, "--serving-dir", paths.serving_dir, "--input", options.input,
            "--auc-tolerance", str(options.auc_tolerance), "--auc-floor", str(options.auc_floor)]


STEPS = (
    Step("preprocess", "pipelines.preprocess", (),
         lambda o, p: ["--input", o.input, "--output", p.prep_dir, *o.preprocess_args],
         lambda o, p: [o.input], lambda o, p: [p.prep_dir]),
    Step("train", "trainer.task", ("preprocess",),
         lambda o, p: ["--data", p.prep_dir, "--job-dir", p.job_dir, "--no-evaluation", *o.trainer_args],
         lambda o, p: [p.prep_dir], lambda o, p: [f"{p.job_dir}/export", f"{p.job_dir}/metrics.json"]),
    Step("evaluate", "trainer.evaluate", ("train",),
         lambda o, p: ["--job-dir", p.job_dir, "--raw-input", o.input],
         lambda o, p: [f"{p.job_dir}/export", o.input], lambda o, p: [f"{p.job_dir}/evaluation"]),
    Step("gate", "deploy.workflow", ("evaluate",), gate_arguments,
         lambda o, p: [f"{p.job_dir}/export", p.serving_dir, p.prep_dir, o.input], lambda o, p: [p.blessing]),
    Step("push", "deploy.workflow", ("gate",),
         lambda o, p: ["push", "--run-dir", p.run_dir, "--serving-dir", p.serving_dir, "--run-id", p.run_id],
         lambda o, p: [f"{p.job_dir}/export"], lambda o, p: [pushed_by(p.serving_dir, p.run_id)], only_if_blessed=True),
)
STEP_NAMES = tuple(step.name for step in STEPS)


def pushed_by(serving_dir: str, run_id: str) -> str:
    """After a push: the version this run made (another run may have pushed since)."""
    from deploy.workflow.gate import version_pushed_by

    return version_pushed_by(serving_dir, run_id)


def new_run_id() -> str:
    """Sortable by start time, unique across machines."""
    return f"{datetime.datetime.now(datetime.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
