"""Run the simulator as ``python -m spherex.simulator OUTDIR``."""

from .cli import main

main(prog_name="python -m spherex.simulator")
