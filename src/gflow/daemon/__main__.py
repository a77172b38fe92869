"""`python -m gflow.daemon`: run the daemon in the foreground (what `gflowd start` spawns)."""

import sys

from gflow.daemon.main import main

sys.exit(main())
