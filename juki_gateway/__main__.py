"""``python -m juki_gateway`` runs the command line."""

import sys

from juki_gateway.cli import main

sys.exit(main())
