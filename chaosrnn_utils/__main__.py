"""``python -m chaosrnn_utils reproduce|summary``: see :mod:`chaosrnn_utils.pipeline`."""

import sys

from .pipeline import main

sys.exit(main())
