"""STEPS as a KFP v2 pipeline for Vertex AI Pipelines, compiled offline.

Every task runs its step's module with the arguments `STEPS` gives it, the
run's paths under ROOT/runs/<pipeline job id>/:
    preprocess  Google's DataflowFlexTemplateJobOp over deploy/dataflow's Flex
                Template (its parameters are preprocess's flags), then
                WaitGcpResourcesOp until the Dataflow job ends
    train       Google's CustomTrainingJobOp with deploy.vertex's worker pools
                (chief + workers: Vertex sets TF_CONFIG)
    evaluate, gate, push
                container tasks in the trainer image (`python -m MODULE ARGS`)
    upload, endpoint, deploy
                behind the gate's condition (blessed == "true"): Google's
                ModelUploadOp (the pushed version, in the serving image),
                EndpointCreateOp and ModelDeployOp
The pipeline's parameters are the raw input and the gate's tolerance and
floor; the rest (trainer options, machines) is fixed when it is compiled.
"""
import dataclasses
import inspect

from kfp import compiler, dsl

from deploy import serving, vertex
from deploy.workflow import STEPS, RunPaths, Step, WorkflowOptions

PIPELINE_NAME = "review-sentiment-workflow"
# A task's output parameters: (name, the step's flag that writes it to a file).
STEP_OUTPUTS = {"gate": (("blessed", "--blessed-output"),), "push": (("version", "--version-output"),)}
PARAMETERS = ("input", "auc_tolerance", "auc_floor")
BLESSED_CONDITION = "blessed"


@dataclasses.dataclass(frozen=True)
class CloudSettings:
    project: str
    region: str
    image: str  # deploy/vertex's trainer image: trainer.task, trainer.evaluate and deploy.workflow
    root: str  # gs:// folder of runs/, serving/ and the pipeline root
    preprocess_image: str | None = None  # deploy/dataflow's image (default: beside the trainer image)
    template: str | None = None  # the Flex Template spec (default: ROOT/templates/review-preprocess.json)
    workers: int = 1
    gpus_per_worker: int = 1
    machine_type: str = "n1-standard-8"
    accelerator: str = "NVIDIA_TESLA_T4"
    serving_machine_type: str = "n1-standard-4"
    endpoint: str | None = None  # an existing endpoint's resource name; None: a new endpoint per blessed run

    @property
    def registry(self) -> str:
        return self.image.rsplit("/", 1)[0]

    @property
    def dataflow_image(self) -> str:
        return self.preprocess_image or f"{self.registry}/review-preprocess:{self.image.rsplit(':', 1)[-1]}"

    @property
    def template_spec(self) -> str:
        return self.template or f"{self.root}/templates/review-preprocess.json"


def settings_problem(settings: CloudSettings, raw_input: str) -> str | None:
    """What would only fail once the pipeline runs on Vertex AI, said now."""
    for flag, value in (("--root", settings.root), ("--input", raw_input), ("--template", settings.template_spec)):
        if not value.startswith("gs://"):
            return f"{flag} {value!r} must be a gs:// path: Vertex AI Pipelines cannot read this machine's files"
    if settings.workers < 1 or settings.gpus_per_worker < 0:
        return f"--workers must be at least 1 and --gpus-per-worker at least 0, got {settings.workers} and {settings.gpus_per_worker}"
    if not settings.preprocess_image and ":" not in settings.image.rsplit("/", 1)[-1]:
        return f"--image {settings.image!r} has no tag: give one (the preprocess image is named after it) or --preprocess-image"
    if settings.endpoint and not settings.endpoint.startswith("projects/"):
        return f"--endpoint {settings.endpoint!r} must be a resource name, projects/P/locations/R/endpoints/ID"
    return None


def step_component(step: Step, image: str, count: int):
    """A container component running `python -m step.module` with `count`
    string arguments (each a task input, so pipeline parameters and the job id
    resolve in them) and the step's output parameters."""
    outputs = STEP_OUTPUTS.get(step.name, ())
    params = [inspect.Parameter(f"arg{i:02d}", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str) for i in range(count)]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=dsl.OutputPath(str))
               for name, _ in outputs]

    def container(*values):
        args = list(values[:count])
        for (_, flag), path in zip(outputs, values[count:]):
            args += [flag, path]
        return dsl.ContainerSpec(image=image, command=["python", "-m", step.module], args=args)

    container.__signature__ = inspect.Signature(params)
    container.__name__ = f"review_{step.name}"
    return dsl.container_component(container)


def flex_template_parameters(arguments: list[str]) -> dict:
    """preprocess's flags → the Flex Template's parameters (deploy/dataflow/metadata.json names)."""
    parameters, i = {}, 0
    while i < len(arguments):
        name = arguments[i].lstrip("-").replace("-", "_")
        if i + 1 < len(arguments) and not arguments[i + 1].startswith("--"):
            parameters[name], i = arguments[i + 1], i + 2
        else:
            parameters[name], i = "true", i + 1
    return parameters


def trainer_pools(settings: CloudSettings, arguments: list[str]) -> list[dict]:
    job = vertex.TrainingJob(project=settings.project, region=settings.region, image=settings.image, data="", job_dir="",
                             workers=settings.workers, gpus_per_worker=settings.gpus_per_worker,
                             machine_type=settings.machine_type, accelerator=settings.accelerator)
    return vertex.worker_pool_specs(job, args=arguments)


def build_pipeline(settings: CloudSettings, options: WorkflowOptions):
    from google_cloud_pipeline_components.types import artifact_types
    from google_cloud_pipeline_components.v1.custom_job import CustomTrainingJobOp
    from google_cloud_pipeline_components.v1.dataflow import DataflowFlexTemplateJobOp
    from google_cloud_pipeline_components.v1.endpoint import EndpointCreateOp, ModelDeployOp
    from google_cloud_pipeline_components.v1.model import ModelUploadOp
    from google_cloud_pipeline_components.v1.wait_gcp_resources import WaitGcpResourcesOp

    @dsl.pipeline(name=PIPELINE_NAME, description="preprocess → train → evaluate → gate → push, upload and deploy if blessed",
                  pipeline_root=f"{settings.root}/pipeline_root")
    def review_sentiment(input: str = options.input, auc_tolerance: float = options.auc_tolerance,  # noqa: A002
                         auc_floor: float = options.auc_floor):
        # Pipeline parameters enter the arguments as placeholders the backend resolves per run.
        run = dataclasses.replace(options, input=f"{input}", auc_tolerance=auc_tolerance, auc_floor=auc_floor)
        paths = RunPaths(settings.root, dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        tasks = {}

        def task_of(step: Step):
            arguments = step.arguments(run, paths)
            if step.name == "preprocess":
                launched = DataflowFlexTemplateJobOp(
                    project=settings.project, location=settings.region, container_spec_gcs_path=settings.template_spec,
                    job_name=f"review-preprocess-{dsl.PIPELINE_JOB_ID_PLACEHOLDER}",  # unique: runs may overlap
                    parameters=flex_template_parameters(arguments),
                    sdk_container_image=settings.dataflow_image, temp_location=f"{settings.root}/tmp",
                    additional_experiments=["upload_graph"]).set_display_name("preprocess: launch Dataflow")
                task = WaitGcpResourcesOp(gcp_resources=launched.outputs["gcp_resources"])
            elif step.name == "train":
                task = CustomTrainingJobOp(project=settings.project, location=settings.region,
                                           display_name="review-sentiment-train",
                                           worker_pool_specs=trainer_pools(settings, arguments))
            else:
                component = step_component(step, settings.image, len(arguments))
                task = component(**{f"arg{i:02d}": value for i, value in enumerate(arguments)})
            for earlier in step.after:
                task.after(tasks[earlier])
            return task.set_display_name(step.name)

        def upload_and_deploy(push):
            model = dsl.importer(artifact_uri=push.outputs["version"], artifact_class=artifact_types.UnmanagedContainerModel,
                                 metadata={"containerSpec": serving.container_spec(settings.registry)}).set_display_name("pushed version")
            uploaded = ModelUploadOp(project=settings.project, location=settings.region, display_name="review-sentiment",
                                     unmanaged_container_model=model.outputs["artifact"]).set_display_name("upload")
            if settings.endpoint:  # the one endpoint every blessed model replaces the last on
                endpoint = dsl.importer(artifact_uri=f"https://{settings.region}-aiplatform.googleapis.com/v1/{settings.endpoint}",
                                        artifact_class=artifact_types.VertexEndpoint,
                                        metadata={"resourceName": settings.endpoint}).set_display_name("endpoint")
                endpoint_artifact = endpoint.outputs["artifact"]
            else:
                endpoint = EndpointCreateOp(project=settings.project, location=settings.region,
                                            display_name="review-sentiment").set_display_name("endpoint")
                endpoint_artifact = endpoint.outputs["endpoint"]
            ModelDeployOp(model=uploaded.outputs["model"], endpoint=endpoint_artifact,
                          deployed_model_display_name="review-sentiment",
                          traffic_split={"0": 100},  # all traffic to the model deployed now
                          dedicated_resources_machine_type=settings.serving_machine_type,
                          dedicated_resources_min_replica_count=1,
                          dedicated_resources_max_replica_count=2).set_display_name("deploy")

        for step in STEPS:
            if not step.only_if_blessed:
                tasks[step.name] = task_of(step)
                continue
            # Only a blessed model reaches serving/ and the endpoint.
            with dsl.If(tasks["gate"].outputs["blessed"] == "true", name=BLESSED_CONDITION):
                tasks[step.name] = task_of(step)
                upload_and_deploy(tasks[step.name])

    return review_sentiment


def compile_to(path: str, settings: CloudSettings, options: WorkflowOptions) -> str:
    compiler.Compiler().compile(build_pipeline(settings, options), path)
    return path


def submission(settings: CloudSettings, options: WorkflowOptions, spec_path: str | None,
               service_account: str | None = None) -> dict:
    """What `submit` sends: the compiled spec and the PipelineJob's settings."""
    import tempfile

    spec_path = spec_path or f"{tempfile.mkdtemp(prefix='review-workflow-')}/pipeline.json"
    compile_to(spec_path, settings, options)
    return {"display_name": PIPELINE_NAME, "template_path": spec_path, "pipeline_root": f"{settings.root}/pipeline_root",
            "project": settings.project, "location": settings.region, "service_account": service_account,
            "parameter_values": {"input": options.input, "auc_tolerance": options.auc_tolerance,
                                 "auc_floor": options.auc_floor}}


def submitted(job: dict):
    """The one step that talks to Google Cloud."""
    from google.cloud import aiplatform

    aiplatform.init(project=job["project"], location=job["location"])
    pipeline_job = aiplatform.PipelineJob(display_name=job["display_name"], template_path=job["template_path"],
                                          pipeline_root=job["pipeline_root"], parameter_values=job["parameter_values"],
                                          enable_caching=False)
    pipeline_job.submit(service_account=job["service_account"])
    return pipeline_job
