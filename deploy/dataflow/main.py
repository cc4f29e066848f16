"""Flex Template entry point: the launcher runs this file with the template's
parameters as command-line flags."""
import sys

from pipelines.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
