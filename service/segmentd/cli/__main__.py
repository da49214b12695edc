"""``python -m segmentd.cli``: the ``segmentd`` command."""

import sys

from segmentd.cli import main

sys.exit(main())
