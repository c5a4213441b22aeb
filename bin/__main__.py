"""``python -m bin``: the arena command."""

from bin.cli import main

main()
