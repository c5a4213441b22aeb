"""``python -m bin``: the arena command."""

from bin.lifeline import hold_on_to_parent

hold_on_to_parent()  # first: a stack's child started by a parent that is already gone leaves now

from bin.cli import main  # noqa: E402

main()
