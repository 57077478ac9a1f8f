"""configuronic presets: the objects ``--policy=.remote``-style command-line references resolve to."""
