import json
import pathlib

from pipelines import preprocess
from pipelines.runtime import LOCAL_RUNNER

DATAFLOW = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "dataflow"
SAMPLE_VALUES = {"input": "gs://b/Reviews.csv", "output": "gs://b/out", "split": "hash", "test_fraction": "0.1",
                 "val_fraction": "0.3", "vocab_size": "5000", "max_length": "200", "keep_stopwords": "true", "num_shards": "16", "overwrite": "true"}


def test_every_flex_template_parameter_is_a_pipeline_option():
    parameters = json.loads((DATAFLOW / "metadata.json").read_text())["parameters"]
    names = [p["name"] for p in parameters]
    assert set(names) == set(SAMPLE_VALUES)
    # The launcher passes each parameter as --name=value; none may fall through to Beam.
    config, beam_args = preprocess.parsed_args([f"--{name}={SAMPLE_VALUES[name]}" for name in names])
    assert beam_args == [f"--runner={LOCAL_RUNNER}"]
    assert (config.split, config.test_fraction, config.val_fraction, config.vocab_size, config.max_length,
            config.keep_stopwords, config.num_shards, config.overwrite) == ("hash", 0.1, 0.3, 5000, 200, True, 16, True)
    assert [p["name"] for p in parameters if not p.get("isOptional")] == ["input", "output"]


def test_run_script_and_dockerfile_use_the_pipeline_module():
    script = (DATAFLOW / "run_preprocess.sh").read_text()
    assert "-m pipelines.preprocess" in script and "--setup_file ./setup.py" in script and "upload_graph" in script
    dockerfile = (DATAFLOW / "Dockerfile").read_text()
    assert "apache/beam_python3.11_sdk:2.77.0" in dockerfile and "deploy/dataflow/main.py" in dockerfile
