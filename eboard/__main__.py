import sys

from eboard.cli import main

sys.exit(main())
