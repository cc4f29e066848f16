"""Vertex AI training jobs, as specs built and checked offline.

Each function returns the plain dict the google-cloud-aiplatform SDK takes
(snake_case, as in the CustomJob / HyperparameterTuningJob protos); `--dry-run`
prints it, and `submitted_*` is the one thin step that talks to Google Cloud.
Vertex AI sets TF_CONFIG (chief + workers) and AIP_MODEL_DIR,
AIP_CHECKPOINT_DIR and AIP_TENSORBOARD_LOG_DIR under base_output_dir, which
trainer.task honours.
"""
import dataclasses

from trainer.recipes import MODEL_NAMES, RECIPES, TUNING_METRIC

ADAM_MODELS = sorted(name for name in MODEL_NAMES if RECIPES[name].optimizer == "adam")
# Hyperparameters a tuning job may set: each is a trainer.task flag (a test checks).
# The learning-rate range is Adam's: it is tuned only in trials of a model
# trained with Adam (a conditional parameter); a tfidf trial keeps its recipe's SGD step.
PARAMETER_SPECS = {
    "batch-size": {"type": "DISCRETE", "values": [256, 512, 1024, 2048], "scale": "linear"},
    "model": {"type": "CATEGORICAL", "values": list(MODEL_NAMES), "conditional": {
        "learning-rate": {"type": "DOUBLE", "min": 1e-4, "max": 1e-2, "scale": "log", "parent_values": ADAM_MODELS},
    }},
}


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    project: str
    region: str
    image: str
    data: str
    job_dir: str
    model: str | None = "lstm1"  # None: a tuning job searches it
    workers: int = 1  # machines in all: one chief plus workers - 1
    gpus_per_worker: int = 1
    machine_type: str = "n1-standard-8"
    accelerator: str = "NVIDIA_TESLA_T4"
    epochs: int | None = None  # None: the model's recipe
    display_name: str = "review-sentiment-train"
    extra_args: tuple = ()


def trainer_args(job: TrainingJob, tuned: bool = False) -> list[str]:
    epochs = [] if job.epochs is None else ["--epochs", str(job.epochs)]
    args = ["--data", job.data, "--job-dir", job.job_dir, *epochs, *job.extra_args]
    return args if tuned and job.model is None else [*args, "--model", job.model]  # else the tuner sets --model


def worker_pool_specs(job: TrainingJob, tuned: bool = False, args: list[str] | None = None) -> list[dict]:
    """Pool 0 is the chief (one replica), pool 1 the other workers; `args`: the
    trainer's arguments when a caller (the workflow) has made them."""
    if job.workers < 1:
        raise ValueError("--workers must be at least 1")
    if job.epochs is not None and job.epochs < 1:
        raise ValueError(f"--epochs must be positive, got {job.epochs}")
    machine = {"machine_type": job.machine_type}
    if job.gpus_per_worker > 0:
        machine |= {"accelerator_type": job.accelerator, "accelerator_count": job.gpus_per_worker}
    container = {"image_uri": job.image, "args": trainer_args(job, tuned) if args is None else list(args)}
    pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": container}]
    if job.workers > 1:
        pools.append({"machine_spec": machine, "replica_count": job.workers - 1, "container_spec": container})
    return pools


def custom_job_spec(job: TrainingJob) -> dict:
    return {
        "display_name": job.display_name,
        "project": job.project,
        "location": job.region,
        "worker_pool_specs": worker_pool_specs(job),
        "base_output_dir": job.job_dir,
    }


def tuned_parameters(model: str | None) -> dict:
    """Every parameter with the model among them; or, for one model, the batch
    size and (for an Adam-trained one) the learning rate."""
    if model is None:
        return PARAMETER_SPECS
    learning_rate = PARAMETER_SPECS["model"]["conditional"]["learning-rate"]
    plain_rate = {key: value for key, value in learning_rate.items() if key != "parent_values"}
    return {"batch-size": PARAMETER_SPECS["batch-size"], **({"learning-rate": plain_rate} if model in ADAM_MODELS else {})}


def tuning_job_spec(job: TrainingJob, max_trials: int = 12, parallel_trials: int = 3) -> dict:
    if max_trials < 1 or parallel_trials < 1:
        raise ValueError(f"--max-trials and --parallel-trials must be positive, got {max_trials} and {parallel_trials}")
    return {
        "display_name": f"{job.display_name}-tuning",
        "project": job.project,
        "location": job.region,
        "metric_spec": {TUNING_METRIC: "maximize"},
        "parameter_spec": tuned_parameters(job.model),
        "max_trial_count": max_trials,
        "parallel_trial_count": parallel_trials,
        "trial_job": {"worker_pool_specs": worker_pool_specs(job, tuned=True), "base_output_dir": job.job_dir},
    }


def _sdk_parameter_spec(spec: dict):
    from google.cloud.aiplatform import hyperparameter_tuning as hpt

    nested = {"parent_values": spec.get("parent_values"),
              "conditional_parameter_spec": {name: _sdk_parameter_spec(c) for name, c in spec.get("conditional", {}).items()} or None}
    if spec["type"] == "DOUBLE":
        return hpt.DoubleParameterSpec(min=spec["min"], max=spec["max"], scale=spec["scale"], **nested)
    if spec["type"] == "DISCRETE":
        return hpt.DiscreteParameterSpec(values=spec["values"], scale=spec["scale"], **nested)
    return hpt.CategoricalParameterSpec(values=spec["values"], **nested)


def submitted_custom_job(spec: dict):
    from google.cloud import aiplatform

    aiplatform.init(project=spec["project"], location=spec["location"], staging_bucket=spec["base_output_dir"])
    job = aiplatform.CustomJob(display_name=spec["display_name"], worker_pool_specs=spec["worker_pool_specs"],
                               base_output_dir=spec["base_output_dir"])
    job.submit()
    return job


def submitted_tuning_job(spec: dict):
    from google.cloud import aiplatform

    aiplatform.init(project=spec["project"], location=spec["location"], staging_bucket=spec["trial_job"]["base_output_dir"])
    trial = aiplatform.CustomJob(display_name=f"{spec['display_name']}-trial", **spec["trial_job"])
    job = aiplatform.HyperparameterTuningJob(
        display_name=spec["display_name"], custom_job=trial, metric_spec=spec["metric_spec"],
        parameter_spec={name: _sdk_parameter_spec(p) for name, p in spec["parameter_spec"].items()},
        max_trial_count=spec["max_trial_count"], parallel_trial_count=spec["parallel_trial_count"])
    job.run(sync=False)
    return job
