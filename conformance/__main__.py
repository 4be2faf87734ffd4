"""``python -m conformance``: the ``wcce-conformance`` command."""

import sys

from conformance.commands.cli import main

sys.exit(main())
