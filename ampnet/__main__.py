import sys

from ampnet.cli import main

sys.exit(main())
