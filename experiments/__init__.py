"""fnn experiments: one question of the tutorial per script (``python -m experiments --list``)."""
