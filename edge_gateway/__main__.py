"""`python -m edge_gateway`."""

import sys

from edge_gateway.main import main

sys.exit(main())
