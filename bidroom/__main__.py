import sys

from bidroom.cli import main

sys.exit(main())
