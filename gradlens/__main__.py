import sys

from gradlens.cli import main

sys.exit(main())
