"""`python -m federator`: the `federator` command, for a checkout or an image without the console script."""

import sys

from federator.cli import main

sys.exit(main())
