"""Runnable examples of the RL environments: tabular Q-learning (numpy only), MaskablePPO
(the ``sb3`` extra) and a steps/s measurement. Run them with ``python -m agents.examples.NAME``."""
