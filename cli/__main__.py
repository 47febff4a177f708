"""``python -m cli``: the same command as ``anomalyst``."""

from cli.main import main

main()
