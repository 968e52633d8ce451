"""`python -m consumption_pipeline.cli`: the `consumption-pipeline` program."""

import sys

from consumption_pipeline.cli import main

sys.exit(main())
