"""``python -m bench.soak``: a soak of a real ``ipmock serve --chaos`` (bench.soak.run)."""

import sys

from bench.soak.run import main

sys.exit(main())
