"""``python -m chaosrnn_utils reproduce|summary``: see :mod:`chaosrnn_utils.cli`."""

import sys

from .cli import main

sys.exit(main())
