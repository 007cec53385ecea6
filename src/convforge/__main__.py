"""``python -m convforge``: the ``convforge`` command line (see :mod:`convforge.cli`)."""
import sys

from .cli import main

sys.exit(main())
