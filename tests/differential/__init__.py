"""The opt-in differential harness against NetSecGame 0.2.0 (see README.md)."""
