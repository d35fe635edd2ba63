"""`python -m sopdsl`: the same command line as `sopdsl`."""

from sopdsl.cli import main

main()
