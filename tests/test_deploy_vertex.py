import json

import pytest

from deploy import vertex
from deploy.vertex.__main__ import main as vertex_main
from trainer import models, task

JOB = vertex.TrainingJob(project="p", region="us-central1", image="us-docker.pkg.dev/p/r/trainer:1", data="gs://b/prep",
                         job_dir="gs://b/jobs/1", model="lstm2", workers=3, gpus_per_worker=2,
                         machine_type="n1-standard-16", accelerator="NVIDIA_TESLA_V100")


def test_custom_job_has_a_chief_pool_and_a_worker_pool(capsys):
    assert vertex_main(["submit", "--project", "p", "--region", "us-central1", "--image", JOB.image, "--data", JOB.data,
                        "--job-dir", JOB.job_dir, "--model", "lstm2", "--workers", "3", "--gpus-per-worker", "2",
                        "--machine-type", "n1-standard-16", "--accelerator", "NVIDIA_TESLA_V100", "--dry-run"]) == 0
    spec = json.loads(capsys.readouterr().out)
    chief, workers = spec["worker_pool_specs"]
    assert chief["replica_count"] == 1 and workers["replica_count"] == 2
    assert chief["machine_spec"] == {"machine_type": "n1-standard-16", "accelerator_type": "NVIDIA_TESLA_V100", "accelerator_count": 2}
    assert chief["container_spec"]["image_uri"] == JOB.image
    assert spec["base_output_dir"] == JOB.job_dir  # Vertex derives AIP_MODEL_DIR etc. from it


def test_container_args_are_ones_the_trainer_accepts():
    args = vertex.worker_pool_specs(JOB)[0]["container_spec"]["args"]
    config = task.parsed_config(args)
    assert (config.data, config.job_dir, config.model) == (JOB.data, JOB.job_dir, "lstm2")


def test_single_machine_job_has_one_pool_and_cpu_only_has_no_accelerator():
    pools = vertex.worker_pool_specs(vertex.TrainingJob(**{**JOB.__dict__, "workers": 1, "gpus_per_worker": 0}))
    assert len(pools) == 1 and "accelerator_type" not in pools[0]["machine_spec"]


ANY_MODEL = vertex.TrainingJob(**{**JOB.__dict__, "model": None})


def test_tuning_job_parameters_are_trainer_flags_and_the_metric_is_reported():
    spec = vertex.tuning_job_spec(ANY_MODEL)
    assert spec["metric_spec"] == {"val_accuracy": "maximize"}
    args = spec["trial_job"]["worker_pool_specs"][0]["container_spec"]["args"]
    assert "--model" not in args  # the tuner chooses it
    parameters = {**spec["parameter_spec"], **spec["parameter_spec"]["model"]["conditional"]}
    for name, parameter in parameters.items():
        value = parameter.get("values", [parameter.get("min")])[-1]
        config = task.parsed_config([*args, f"--{name}={value}"])  # Vertex appends --name=value
        assert str(getattr(config, name.replace("-", "_"))) == str(value)
    assert spec["parameter_spec"]["model"]["values"] == sorted(models.BUILDERS)


def test_the_learning_rate_is_tuned_only_for_models_trained_with_adam():
    learning_rate = vertex.tuning_job_spec(ANY_MODEL)["parameter_spec"]["model"]["conditional"]["learning-rate"]
    assert learning_rate["parent_values"] == ["bilstm", "fasttext", "lstm1", "lstm2"]
    sdk = vertex._sdk_parameter_spec(vertex.PARAMETER_SPECS["model"])
    assert list(sdk.conditional_parameter_spec) == ["learning-rate"]
    assert list(sdk.conditional_parameter_spec["learning-rate"].parent_values) == learning_rate["parent_values"]


def test_tuning_one_model_passes_it_and_tunes_only_what_that_model_takes():
    for model, tuned in (("lstm2", {"batch-size", "learning-rate"}), ("tfidf", {"batch-size"})):
        spec = vertex.tuning_job_spec(vertex.TrainingJob(**{**JOB.__dict__, "model": model}))
        args = spec["trial_job"]["worker_pool_specs"][0]["container_spec"]["args"]
        assert args[-2:] == ["--model", model] and set(spec["parameter_spec"]) == tuned
        assert "parent_values" not in spec["parameter_spec"].get("learning-rate", {})
    dry_run = ["tune", "--project", "p", "--region", "r", "--image", "i", "--data", "d", "--job-dir", "j", "--dry-run"]
    assert vertex_main(dry_run) == 0 and vertex_main([*dry_run, "--model", "tfidf"]) == 0


@pytest.mark.parametrize("extra, message", [(["--max-trials", "0"], "--max-trials and --parallel-trials must be positive"),
                                            (["--epochs", "0"], "--epochs must be positive")])
def test_zero_trials_or_epochs_are_one_line_errors(capsys, extra, message):
    assert vertex_main(["tune", "--project", "p", "--region", "r", "--image", "i", "--data", "d", "--job-dir", "j",
                        "--dry-run", *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_worker_count_is_a_one_line_error(capsys):
    assert vertex_main(["submit", "--project", "p", "--region", "r", "--image", "i", "--data", "d", "--job-dir", "j",
                        "--workers", "0", "--dry-run"]) == 2
    assert "vertex: error: --workers must be at least 1" in capsys.readouterr().err


def test_the_vertex_cli_loads_no_tensorflow():
    """Model names and recipes come from trainer.recipes, so a dry run prints its spec and nothing else."""
    from tests.conftest import run_module

    result = run_module("deploy.vertex", "tune", "--project", "p", "--region", "r", "--image", "i", "--data", "d",
                        "--job-dir", "j", "--model", "tfidf", "--dry-run")
    assert result.returncode == 0 and result.stderr == "", result.stderr[-500:]
    assert json.loads(result.stdout)["parameter_spec"] == {"batch-size": vertex.PARAMETER_SPECS["batch-size"]}
