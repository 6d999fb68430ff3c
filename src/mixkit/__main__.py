"""``python -m mixkit ...`` is the ``mixkit`` command (used by ``torchrun -m mixkit bench``)."""
import sys

from .cli import main

sys.exit(main())
