"""`python -m tests.snapshots` (`make definition-snapshot`): rebuild the committed definition snapshot."""

import sys

from tests.snapshots import main

sys.exit(main())
