"""Deploy an export to a Vertex AI endpoint (or print the spec with --dry-run).

    python -m deploy.serving --project P --region R --export gs://.../export/<version> --registry REGION-docker.pkg.dev/P/REPO [--dry-run]
"""
import argparse
import json
import sys

from deploy.serving import Endpoint, deployed, endpoint_spec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--export", required=True, help="gs:// folder holding saved_model.pb")
    parser.add_argument("--registry", required=True, help="the Artifact Registry repository holding the serving image")
    parser.add_argument("--machine-type", default="n1-standard-4")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    spec = endpoint_spec(Endpoint(project=args.project, region=args.region, export=args.export, registry=args.registry,
                                  machine_type=args.machine_type))
    if args.dry_run:
        print(json.dumps(spec, indent=2))
        return 0
    endpoint = deployed(spec)
    print(f"deployed to {endpoint.resource_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
