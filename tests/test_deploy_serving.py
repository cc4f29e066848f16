import json

import tensorflow as tf

from deploy import serving
from deploy.serving.__main__ import main as serving_main
from tests.conftest import latest_export


def test_request_example_matches_the_exports_signature(trained_job):
    loaded = tf.saved_model.load(latest_export(trained_job))
    signature = loaded.signatures[serving.REQUEST["signature_name"]]
    _, inputs = signature.structured_input_signature
    assert set(inputs) == {key for instance in serving.REQUEST["instances"] for key in instance} == {"text"}
    assert inputs["text"].dtype == tf.string
    # TF Serving's row format stacks the instances into one batch: the same call.
    outputs = signature(text=tf.constant([i["text"] for i in serving.REQUEST["instances"]]))
    assert set(outputs) == {"probability", "label", "num_words", "oov_fraction"} and outputs["probability"].shape == (2,)


def test_endpoint_spec_dry_run(capsys):
    assert serving_main(["--project", "p", "--region", "europe-west4", "--export", "gs://b/jobs/1/export/17",
                         "--registry", "europe-west4-docker.pkg.dev/p/repo", "--dry-run"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["model"]["artifact_uri"] == "gs://b/jobs/1/export/17"
    assert spec["model"]["serving_container_image_uri"] == f"europe-west4-docker.pkg.dev/p/repo/review-serving:tf{serving.SERVING_IMAGE.tensorflow}"
    assert spec["model"]["serving_container_predict_route"] == "/predict" and spec["model"]["serving_container_ports"] == [8080]
    assert spec["deployment"]["min_replica_count"] == 1
