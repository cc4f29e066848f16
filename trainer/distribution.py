"""tf.distribute: which strategy, which task is the chief, and two repairs
that let Keras 3's `fit` run under MultiWorkerMirroredStrategy.

Keras 3.15 (pinned in setup.py) supports MirroredStrategy but fails under
MultiWorkerMirroredStrategy (keras-team/keras#20585, tensorflow#72388) in two
places, both fixed here only for that strategy:
1. before the first step `fit` all-reduces one input batch across workers just
   to learn its shapes, which TF cannot do with the tensor one local replica
   holds: the local batch has the same shapes, so it is used instead;
2. metric results (scalars) are averaged across workers with `axis=0`, which a
   scalar does not have: they are averaged with `axis=None`.
tests/test_task.py trains with two real worker processes to keep this honest.
"""
import json
import os

import tensorflow as tf
from keras.src.backend.tensorflow import trainer as keras_tf_trainer


def cluster_task() -> tuple[str, int, dict]:
    """(task type, index, cluster) from TF_CONFIG, as Vertex AI sets it."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0)), tf_config.get("cluster", {})


def is_chief() -> bool:
    task_type, index, cluster = cluster_task()
    return task_type == "chief" or (task_type == "worker" and index == 0 and "chief" not in cluster)


def worker_shard() -> tuple[int, int]:
    """(workers, this worker's position): the chief first, then the workers."""
    task_type, index, cluster = cluster_task()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if chiefs + workers <= 1 or task_type not in ("chief", "worker"):
        return 1, 0
    return chiefs + workers, (0 if task_type == "chief" else chiefs + index)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """auto: several workers in TF_CONFIG → multi-worker; several GPUs → mirrored."""
    _, _, cluster = cluster_task()
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "multi-worker" if workers > 1 else "mirrored" if len(gpus) > 1 else "one-device"
    if name == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


_keras_reduce_per_replica = keras_tf_trainer.reduce_per_replica


def _reduce_per_replica(values, strategy, reduction):
    if reduction in ("auto", "mean") and is_multi_worker(strategy):
        return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
    return _keras_reduce_per_replica(values, strategy, reduction)


def fit_ready(model, strategy: tf.distribute.Strategy):
    """Applies the two repairs above when (and only when) training on several workers."""
    if not is_multi_worker(strategy):
        return model
    keras_tf_trainer.reduce_per_replica = _reduce_per_replica
    symbolic_build = model._maybe_symbolic_build

    def build_from_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], next(batches))
                break
        return symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = build_from_local_batch
    return model
