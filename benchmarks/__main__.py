"""`python -m benchmarks` is `envelope bench`."""

import sys

from benchmarks.run import main

sys.exit(main())
