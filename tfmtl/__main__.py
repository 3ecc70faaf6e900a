import sys

from tfmtl.cli import main

sys.exit(main())
