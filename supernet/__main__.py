"""``python -m supernet`` is the same as the ``supernet`` command."""

import sys

from supernet.cli import main

sys.exit(main())
