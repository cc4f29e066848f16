#!/usr/bin/env bash
# Serve JOB/export/ (the folder holding numeric versions) with TF Serving, then score raw text.
#   TF_SERVING_TAG=X.Y.Z bash deploy/serving/tf_serving.sh demo/jobs/lstm1/export
# TF Serving loads an export only if its TensorFlow is at least the exporter's (2.21 here); the
# serving image (deploy/serving/Dockerfile) always is.
set -euo pipefail
EXPORT_BASE=$(cd "${1:?export base folder, e.g. demo/jobs/lstm1/export}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
docker run -d --rm --name review-sentiment -p 8501:8501 \
  -v "$EXPORT_BASE:/models/review_sentiment" -v "$HERE/models.config:/config/models.config" \
  "tensorflow/serving:${TF_SERVING_TAG:?set TF_SERVING_TAG to a TF Serving release at least as new as the export TensorFlow}" --model_config_file=/config/models.config
sleep 5
curl -s -X POST http://localhost:8501/v1/models/review_sentiment:predict \
  -H 'Content-Type: application/json' -d @"$HERE/request.json"
