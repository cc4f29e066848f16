#!/usr/bin/env bash
# Run pipelines.preprocess on Dataflow straight from this checkout (workers install setup.py).
#   PROJECT=my-project REGION=us-central1 BUCKET=my-bucket bash deploy/dataflow/run_preprocess.sh gs://my-bucket/Reviews.csv
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
INPUT=${1:-gs://$BUCKET/data/Reviews.csv}
OUTPUT=${2:-gs://$BUCKET/prep/$(date +%Y%m%d-%H%M%S)}
exec ${PYTHON:-.venv/bin/python} -m pipelines.preprocess --input "$INPUT" --output "$OUTPUT" \
  --runner DataflowRunner --project "$PROJECT" --region "$REGION" \
  --temp_location "gs://$BUCKET/dataflow/tmp" --staging_location "gs://$BUCKET/dataflow/staging" \
  --setup_file ./setup.py --experiments=upload_graph \
  --machine_type "${MACHINE_TYPE:-n1-standard-4}" --max_num_workers "${MAX_WORKERS:-10}" \
  --job_name "review-preprocess-$(date +%Y%m%d-%H%M%S)" "${@:3}"
