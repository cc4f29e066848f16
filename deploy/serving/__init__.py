"""Serving the export: TF Serving (docker) and a Vertex AI endpoint.

The export is one SavedModel whose serving_default signature takes raw review
text (input `text`, string [None]) and returns `probability` and `label`.
REQUEST (also in request.json) is what the README's curl example sends to TF
Serving's REST API; a test checks it against the export's own signature.
"""
import dataclasses
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
REQUEST = json.loads((HERE / "request.json").read_text())
MODEL_NAME = "review_sentiment"
# Vertex AI's prebuilt TensorFlow serving container (CPU).
VERTEX_SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    project: str
    region: str
    export: str  # gs://.../export/<version>, the folder holding saved_model.pb
    display_name: str = "review-sentiment"
    machine_type: str = "n1-standard-4"
    min_replicas: int = 1
    max_replicas: int = 2
    serving_image: str = VERTEX_SERVING_IMAGE


def endpoint_spec(endpoint: Endpoint) -> dict:
    return {
        "project": endpoint.project,
        "location": endpoint.region,
        "model": {"display_name": endpoint.display_name, "artifact_uri": endpoint.export,
                  "serving_container_image_uri": endpoint.serving_image},
        "deployment": {"deployed_model_display_name": endpoint.display_name, "machine_type": endpoint.machine_type,
                       "min_replica_count": endpoint.min_replicas, "max_replica_count": endpoint.max_replicas},
        "example_request": REQUEST,
    }


def deployed(spec: dict):
    """Uploads the export as a Vertex AI Model and deploys it to a new endpoint."""
    from google.cloud import aiplatform

    aiplatform.init(project=spec["project"], location=spec["location"])
    model = aiplatform.Model.upload(**spec["model"])
    return model.deploy(**spec["deployment"])
