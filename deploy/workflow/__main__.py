"""preprocess → train → evaluate → gate → push, here or on Vertex AI Pipelines.

    python -m deploy.workflow run --input PATTERN --work-dir DIR [workflow options] [trainer options]
    python -m deploy.workflow compile --output FILE --project P --region R --image URI [--preprocess-image URI]
        --input gs://... --root gs://... [workflow options] [trainer options]
    python -m deploy.workflow submit  ...compile's flags... [--service-account SA] [--dry-run]
    python -m deploy.workflow gate --run-dir RUN --serving-dir DIR --input PATTERN [--auc-tolerance T] [--auc-floor F]
    python -m deploy.workflow push --run-dir RUN --serving-dir DIR [--run-id ID]

`run` exits 0 when the candidate is not blessed, saying why in one line; it
pushes nothing then. The same `run --run-id ID` after an interruption resumes
at the step that did not finish. `gate` and `push` are the workflow's own
steps (a pipeline task runs them in the trainer image).
"""
import argparse
import math
import os
import re
import sys

import reviews.quiet  # noqa: F401  before TensorFlow loads: its start-up notices are not our output

from deploy import DeployError, workflow
from deploy.workflow import steps
from reviews import logs
from reviews.errors import one_line_errors
from reviews.locks import exclusive_writer
from reviews.storage import storage_errors_in_one_line

ACTIONS = ("run", "compile", "submit", "gate", "push")
PREPROCESS_FLAGS = ("vocab_size", "max_length", "split", "test_fraction", "val_fraction", "num_shards")
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
EPILOG = ("Every other option is trainer.task's (--model, --epochs, --batch-size, --learning-rate, ...), "
          "checked by its parser before anything runs.")


def unit_interval(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_workflow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="the raw reviews (CSV or SNAP; path, glob or gs://)")
    parser.add_argument("--auc-tolerance", type=unit_interval, default=workflow.DEFAULT_AUC_TOLERANCE,
                        help="how much lower than the served model's AUC a candidate may be and still be blessed")
    parser.add_argument("--auc-floor", type=unit_interval, default=workflow.DEFAULT_AUC_FLOOR,
                        help="the AUC every blessed model reaches, the first one too")
    for flag in PREPROCESS_FLAGS:
        parser.add_argument(f"--{flag.replace('_', '-')}", default=None, help="passed to pipelines.preprocess")
    parser.add_argument("--keep-stopwords", action="store_true", help="passed to pipelines.preprocess")


def workflow_options(args: argparse.Namespace, trainer_args: list[str]) -> workflow.WorkflowOptions:
    preprocess = [item for flag in PREPROCESS_FLAGS if getattr(args, flag) is not None
                  for item in (f"--{flag.replace('_', '-')}", str(getattr(args, flag)))]
    if args.keep_stopwords:
        preprocess.append("--keep-stopwords")
    return workflow.WorkflowOptions(input=args.input, preprocess_args=tuple(preprocess), trainer_args=tuple(trainer_args),
                                    auc_tolerance=args.auc_tolerance, auc_floor=args.auc_floor)


def checked_step_options(parser: argparse.ArgumentParser, options: workflow.WorkflowOptions) -> None:
    """The preprocessing and trainer options, checked now by the stages' own
    parsers and checks, not after minutes of preprocessing."""
    owned = next((a for a in options.trainer_args if a.split("=", 1)[0] in workflow.WORKFLOW_OWNED), None)
    if owned:
        parser.error(f"{owned.split('=', 1)[0]} is set by the workflow itself")
    from pipelines import preprocess
    from trainer import task

    config, _ = preprocess.parsed_args(["--input", options.input, "--output", "-", *options.preprocess_args])
    problem = preprocess.option_problem(config)
    if problem:
        parser.error(problem)
    task.parsed_config(["--data", "-", "--job-dir", "-", *options.trainer_args])


def parser_for(action: str) -> logs.OneLineParser:
    parser = logs.OneLineParser(name="workflow", prog=f"python -m deploy.workflow {action}", description=__doc__.split("\n")[0],
                                epilog=EPILOG if action in ("run", "compile", "submit") else None)
    if action == "run":
        parser.add_argument("--work-dir", required=True, help="runs/<run id>/ and serving/<version>/ go here")
        parser.add_argument("--run-id", default=None,
                            help="default: UTC start time and a random suffix; an unfinished run's id resumes it")
        add_workflow_options(parser)
    elif action in ("compile", "submit"):
        parser.add_argument("--output", required=action == "compile", help="the compiled pipeline spec (JSON or YAML)")
        for flag in ("--project", "--region", "--image", "--root"):
            parser.add_argument(flag, required=True)
        parser.add_argument("--preprocess-image", default=None,
                            help="deploy/dataflow's image (default: the trainer image's registry, review-preprocess)")
        parser.add_argument("--template", default=None,
                            help="the Flex Template spec in GCS (default: ROOT/templates/review-preprocess.json)")
        parser.add_argument("--endpoint", default=None,
                            help="deploy to this Vertex AI endpoint (projects/…/endpoints/ID); default: a new one per run")
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--gpus-per-worker", type=int, default=1)
        parser.add_argument("--machine-type", default="n1-standard-8")
        parser.add_argument("--accelerator", default="NVIDIA_TESLA_T4")
        add_workflow_options(parser)
        if action == "submit":
            parser.add_argument("--service-account", default=None)
            parser.add_argument("--dry-run", action="store_true", help="compile and print what would be submitted")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    return parser


def run(args, trainer_args: list[str]) -> int:
    from deploy.workflow.local import StepFailed, run_workflow
    from reviews.paths import output_problem

    if args.run_id and not RUN_ID.fullmatch(args.run_id):
        raise DeployError(f"--run-id {args.run_id!r}: letters, digits, '.', '_' and '-' only, not first '.' or '-'")
    problem = output_problem(args.work_dir, "--work-dir")
    if problem:
        raise DeployError(problem)
    paths = workflow.RunPaths(args.work_dir.rstrip("/"), args.run_id or workflow.new_run_id())
    resume = f"the same command with --run-id {paths.run_id} resumes it"
    try:
        with exclusive_writer(paths.run_dir, f"deploy.workflow run {paths.run_id}"):
            blessing, pushed = run_workflow(workflow_options(args, trainer_args), paths)
    except StepFailed as error:
        print(f"workflow: error: {error}; {resume}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print(f"workflow: interrupted; {resume}", file=sys.stderr)
        return 130
    print(f"run {paths.run_id}: {blessing['reason']}; {f'pushed {pushed}' if pushed else 'nothing pushed'}")
    return 0


def compiled(args, trainer_args: list[str]) -> tuple:
    from deploy.workflow import pipeline

    settings = pipeline.CloudSettings(project=args.project, region=args.region, image=args.image, root=args.root.rstrip("/"),
                                      preprocess_image=args.preprocess_image, template=args.template, workers=args.workers,
                                      gpus_per_worker=args.gpus_per_worker, machine_type=args.machine_type,
                                      accelerator=args.accelerator, endpoint=args.endpoint)
    problem = pipeline.settings_problem(settings, args.input)
    if problem:
        raise DeployError(problem)
    if args.output:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    return settings, workflow_options(args, trainer_args)


def compile_pipeline(args, trainer_args: list[str]) -> int:
    from deploy.workflow import pipeline

    settings, options = compiled(args, trainer_args)
    pipeline.compile_to(args.output, settings, options)
    print(f"wrote {args.output}: {len(workflow.STEPS)} steps ({' → '.join(workflow.STEP_NAMES)}), "
          f"upload and deploy behind the gate")
    return 0


def submit(args, trainer_args: list[str]) -> int:
    from deploy.workflow import pipeline

    settings, options = compiled(args, trainer_args)
    job = pipeline.submission(settings, options, args.output, args.service_account)
    if args.dry_run:
        import json

        print(json.dumps(job, indent=2))
        return 0
    print(f"submitted {pipeline.submitted(job).resource_name}")
    return 0


WRITES = {"run": ("work_dir", "--work-dir"), "compile": ("output", "--output"), "submit": ("output", "--output")}


def written_by(action: str, args) -> tuple[str, str]:
    """(path, what) an action writes, for its one-line storage errors."""
    name, what = WRITES[action]
    return str(getattr(args, name, None) or ""), what


@one_line_errors("workflow")
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ACTIONS:
        parser = logs.OneLineParser(name="workflow", prog="python -m deploy.workflow", description=__doc__.split("\n")[0])
        parser.add_argument("action", choices=ACTIONS)
        parser.parse_args(argv[:1])
    action, rest = argv[0], argv[1:]
    if action in steps.ACTIONS:
        return steps.main(argv)
    parser = parser_for(action)
    args, trainer_args = parser.parse_known_args(rest)
    checked_step_options(parser, workflow_options(args, trainer_args))
    logs.configure(args.verbose)
    handler = {"run": run, "compile": compile_pipeline, "submit": submit}[action]
    with storage_errors_in_one_line(*written_by(action, args)):
        return handler(args, trainer_args)


if __name__ == "__main__":
    sys.exit(main())
