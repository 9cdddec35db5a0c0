"""``python -m mock_server.cli``: the ``ipmock`` command."""

import sys

from mock_server.cli import main

sys.exit(main())
