"""``python -m mixkit.cli ...`` is the ``mixkit`` command."""
import sys

from .main import main

sys.exit(main())
