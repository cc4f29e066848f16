"""What the stages share that needs no Beam: the trainer, the server and the
workflow import it without loading apache_beam, and pipelines/ wraps its
readers and rules in Beam transforms.

- contract: the names of the preprocessing output (features, splits, files).
- records: the Kaggle CSV and SNAP readers; validation: the schema's rule.
- paths: input and output checks (tf.io.gfile, Beam's pattern rules).
- exports: loading a trainer.task export; drift: the drift profile and check.
- errors, logs: one-line errors and quiet command lines.
- locks: one writer per output directory; storage: full disks, read-only
  mounts and refused permissions said in one line.
"""
