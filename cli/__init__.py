"""The ``anomalyst`` command line: a thin front end over ``core.app``.

``cli.main`` holds the group and attaches every command; each other module holds one group of
commands. A module here imports ``core.app`` (and ``sample_data`` for ``generate``/``demo``),
never the rest of ``core`` (``tests/test_architecture.py``).
"""
