import sys

from nomad_ctr.cli.main import main

sys.exit(main())
