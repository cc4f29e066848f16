"""Serving the export: our serving image (a Vertex AI endpoint, or docker
anywhere), or TF Serving.

The export is one SavedModel whose serving_default signature takes raw review
text (input `text`, string [None]) and returns `probability`, `label`,
`num_words` and `oov_fraction`. REQUEST (also in request.json) is what the
curl example in docs/serving.md sends; a test checks it against the export's own
signature.

The serving image is SERVING_IMAGE, the one setting that says which TensorFlow
it serves with. An export runs on a TensorFlow at least as new as the one that
wrote it, and none of the images one could take ready-made is: Vertex AI's
prebuilt prediction containers stop at TensorFlow 2.15, the latest TF Serving
release is 2.20, and trainer.task exports with 2.21. So the image is built
from this package (deploy/serving/Dockerfile), whose pinned TensorFlow is the
trainer's by construction; a test fails when setup.py's pin and this setting
disagree.
"""
import dataclasses
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
REQUEST = json.loads((HERE / "request.json").read_text())
MODEL_NAME = "review_sentiment"


@dataclasses.dataclass(frozen=True)
class ServingImage:
    name: str  # in the same Artifact Registry repository as the trainer image
    tensorflow: str  # the TensorFlow it serves with: setup.py's pin
    port: int = 8080
    health_route: str = "/health"
    predict_route: str = "/predict"

    def uri(self, registry: str) -> str:
        return f"{registry}/{self.name}:tf{self.tensorflow}"


SERVING_IMAGE = ServingImage(name="review-serving", tensorflow="2.21.0")


def container_spec(registry: str) -> dict:
    """The model's serving container, as Vertex AI's Model.containerSpec."""
    return {"imageUri": SERVING_IMAGE.uri(registry), "healthRoute": SERVING_IMAGE.health_route,
            "predictRoute": SERVING_IMAGE.predict_route, "ports": [{"containerPort": SERVING_IMAGE.port}]}


@dataclasses.dataclass(frozen=True)
class Endpoint:
    project: str
    region: str
    export: str  # gs://.../export/<version>, the folder holding saved_model.pb
    registry: str  # REGION-docker.pkg.dev/PROJECT/REPO, where SERVING_IMAGE was pushed
    display_name: str = "review-sentiment"
    machine_type: str = "n1-standard-4"
    min_replicas: int = 1
    max_replicas: int = 2


def endpoint_spec(endpoint: Endpoint) -> dict:
    return {
        "project": endpoint.project,
        "location": endpoint.region,
        "model": {"display_name": endpoint.display_name, "artifact_uri": endpoint.export,
                  "serving_container_image_uri": SERVING_IMAGE.uri(endpoint.registry),
                  "serving_container_health_route": SERVING_IMAGE.health_route,
                  "serving_container_predict_route": SERVING_IMAGE.predict_route,
                  "serving_container_ports": [SERVING_IMAGE.port]},
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
