import sys

from brender.cli.main import main

sys.exit(main())
