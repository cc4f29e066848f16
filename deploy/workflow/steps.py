"""The workflow's own steps, gate and push: their command line (`python -m
deploy.workflow gate|push ...`, what a pipeline task runs in the trainer image)
and bodies (deploy/workflow/gate.py). deploy.workflow's command line hands
these two actions here, and the local runner calls `main` directly, so nothing
here imports either of them."""
import os
import sys

from deploy import DeployError, workflow
from deploy.workflow.gate import GateConfig, gate, pushed_version
from reviews import logs
from reviews.errors import one_line_errors
from reviews.storage import storage_errors_in_one_line

ACTIONS = ("gate", "push")
WRITES = {"gate": ("run_dir", "the gate's blessing in"), "push": ("serving_dir", "--serving-dir")}


def parser_for(action: str) -> logs.OneLineParser:
    parser = logs.OneLineParser(name="workflow", prog=f"python -m deploy.workflow {action}", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--serving-dir", required=True)
    if action == "gate":
        parser.add_argument("--input", required=True)
        parser.add_argument("--auc-tolerance", type=float, default=workflow.DEFAULT_AUC_TOLERANCE)
        parser.add_argument("--auc-floor", type=float, default=workflow.DEFAULT_AUC_FLOOR)
        parser.add_argument("--blessed-output", default=None, help="a file that receives true or false (pipeline tasks)")
    else:
        parser.add_argument("--run-id", default=None, help="recorded with the pushed version")
        parser.add_argument("--version-output", default=None, help="a file that receives the pushed version's path")
    parser.add_argument("--verbose", action="store_true", help="show the libraries' full logs")
    return parser


def gate_config(args) -> GateConfig:
    return GateConfig(run_dir=args.run_dir.rstrip("/"), serving_dir=args.serving_dir.rstrip("/"),
                      input=getattr(args, "input", ""), auc_tolerance=getattr(args, "auc_tolerance", 0.0),
                      auc_floor=getattr(args, "auc_floor", 0.0))


def written_output(path: str | None, value: str) -> None:
    """A pipeline task's output parameter: the file KFP reads it from."""
    if path:
        import tensorflow as tf

        tf.io.gfile.makedirs(os.path.dirname(path) or ".")
        with tf.io.gfile.GFile(path, "w") as handle:
            handle.write(value)


def gated(args) -> int:
    result = gate(gate_config(args))
    written_output(args.blessed_output, "true" if result["blessed"] else "false")
    print(result["reason"])
    return 0


def pushed(args) -> int:
    version = pushed_version(gate_config(args), args.run_id or os.path.basename(args.run_dir.rstrip("/")))
    written_output(args.version_output, version)
    print(f"pushed {version}")
    return 0


@one_line_errors("workflow")
def main(argv=None) -> int:
    """`gate ...` or `push ...`: the step's status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ACTIONS:
        raise DeployError(f"the workflow's steps are {' and '.join(ACTIONS)}, not {argv[:1] or 'none'}")
    action, rest = argv[0], argv[1:]
    args = parser_for(action).parse_args(rest)
    logs.configure(args.verbose)
    name, what = WRITES[action]
    with storage_errors_in_one_line(getattr(args, name), what):
        return {"gate": gated, "push": pushed}[action](args)
