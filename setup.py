"""review-sentiment: Beam + tf.Transform preprocessing and Keras LSTM training.

This same file is what Dataflow workers install (`--setup_file ./setup.py`),
so the runtime pins below are the whole contract between local runs, CI and
the cloud. tensorflow, tensorflow-transform, tfx-bsl and apache-beam must move
together: tensorflow-transform 1.21 requires tensorflow >=2.21,<2.22.
"""
import setuptools

# The top-level packages: installed here, and the only code the images copy (.dockerignore).
PACKAGES = ("reviews", "schemas", "pipelines", "trainer", "deploy")

RUNTIME = [
    "tensorflow==2.21.0",
    "tensorflow-transform==1.21.0",
    "tfx-bsl==1.21.0",
    "apache-beam[gcp]==2.77.0",
    "keras==3.15.1",
    "tf_keras==2.21.0",
    # TF 2.21 no longer pulls tensorboard in; keras.callbacks.TensorBoard needs it.
    "tensorboard==2.21.0",
    "numpy>=1.26,<3",
    # Preprocessing keeps reviews in Arrow batches (pa.concat_batches: pyarrow 19+) and hashes
    # dedup keys with pandas' hash_array; both also come with tfx-bsl.
    "pyarrow>=19,<26",
    "pandas>=2.2,<4",
    "matplotlib>=3.8,<4",
    # Test metrics (F1 per class) and the reference TF-IDF baseline in benchmarks/.
    "scikit-learn==1.9.1",
]

EXTRAS = {
    "test": ["pytest==9.2.0", "pytest-timeout==2.4.0"],
    # Vertex AI client (apache-beam[gcp] 2.77 caps it below 2.0); the KFP v2 SDK and Google's
    # pipeline components for deploy.workflow (they install beside the pinned stack, moving no pin).
    "deploy": ["google-cloud-aiplatform>=1.60,<2", "kfp==2.17.3", "google-cloud-pipeline-components==2.22.0"],
}

setuptools.setup(
    name="review-sentiment",
    version="0.1.0",
    description="Amazon Fine Food review sentiment: Beam/tf.Transform data prep and Keras LSTM training",
    python_requires=">=3.11,<3.12",
    packages=setuptools.find_packages(include=[*PACKAGES, "deploy.*"]),
    package_data={
        "schemas": ["*.json"],
        "deploy.serving": ["request.json", "models.config", "*.sh", "Dockerfile"],
        "deploy.dataflow": ["metadata.json", "Dockerfile", "*.sh"],
        "deploy.vertex": ["Dockerfile"],
    },
    include_package_data=True,
    install_requires=RUNTIME,
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "review-preprocess=pipelines.preprocess:main",
            "review-sample=pipelines.sample:main",
            "review-train=trainer.task:main",
            "review-predict=trainer.predict:main",
            "review-score=pipelines.score:main",
            "review-evaluate=trainer.evaluate:main",
        ]
    },
)
