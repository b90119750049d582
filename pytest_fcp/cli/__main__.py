"""``python -m pytest_fcp.cli``: the ``fcp`` command."""

import sys

from pytest_fcp.cli import main

sys.exit(main())
