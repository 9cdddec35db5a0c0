"""``python -m bench.peers``: ipmock side by side with Prism and WireMock (bench.peers.cli)."""

import sys

from bench.peers.cli import main

sys.exit(main())
