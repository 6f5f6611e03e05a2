"""``python -m irncodec`` (and ``torchrun -m irncodec train ...``) run the command line."""

from .cli import main

main(prog_name="irncodec")
