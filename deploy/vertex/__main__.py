"""Submit training to Vertex AI (or print the spec with --dry-run).

    python -m deploy.vertex submit --project P --region R --image URI --data gs://... --job-dir gs://...
        --model lstm1 --workers N --gpus-per-worker K --machine-type M --accelerator A [--dry-run]
    python -m deploy.vertex tune   ... the same ...   [--max-trials 12] [--parallel-trials 3] [--dry-run]

`tune` without --model searches the model too; with --model it tunes that one.
"""
import argparse
import json
import sys

from deploy.vertex import MODEL_NAMES, TrainingJob, custom_job_spec, submitted_custom_job, submitted_tuning_job, tuning_job_spec


def parsed(argv=None) -> tuple[str, TrainingJob, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m deploy.vertex", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("submit", "tune"))
    for name in ("project", "region", "image", "data", "job-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--model", choices=MODEL_NAMES, default=None,
                        help="default: lstm1 for submit; for tune, the model is one of the tuned parameters")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--gpus-per-worker", type=int, default=1)
    parser.add_argument("--machine-type", default="n1-standard-8")
    parser.add_argument("--accelerator", default="NVIDIA_TESLA_T4")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's recipe")
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--parallel-trials", type=int, default=3)
    parser.add_argument("--dry-run", action="store_true", help="print the job spec as JSON, submit nothing")
    args, trainer_extra = parser.parse_known_args(argv)
    job = TrainingJob(project=args.project, region=args.region, image=args.image, data=args.data, job_dir=args.job_dir,
                      model=args.model or ("lstm1" if args.action == "submit" else None), workers=args.workers, gpus_per_worker=args.gpus_per_worker,
                      machine_type=args.machine_type, accelerator=args.accelerator, epochs=args.epochs,
                      extra_args=tuple(trainer_extra))
    return args.action, job, args


def main(argv=None) -> int:
    action, job, args = parsed(argv)
    try:
        spec = custom_job_spec(job) if action == "submit" else tuning_job_spec(job, args.max_trials, args.parallel_trials)
    except ValueError as error:
        print(f"vertex: error: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(json.dumps(spec, indent=2))
        return 0
    submitted = submitted_custom_job(spec) if action == "submit" else submitted_tuning_job(spec)
    print(f"submitted {submitted.resource_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
