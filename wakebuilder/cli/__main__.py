"""``python -m wakebuilder.cli``: the same as ``wb``."""

from wakebuilder.cli import main

main()
