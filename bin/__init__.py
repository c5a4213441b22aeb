"""The ``arena`` command line (``bin/cli.py``)."""
