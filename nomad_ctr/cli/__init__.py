"""`nomad-ctr`: a small command line over the nomad_ctr API and localrun.

Startup imports only argparse; each command imports what it needs when it runs.
"""

from nomad_ctr.cli.main import main

__all__ = ["main"]
