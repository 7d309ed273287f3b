"""The closed-loop demo (``make demo``): see :mod:`edgeloop.loop_demo.run`."""

from edgeloop.loop_demo.run import FAST, LoopResult, LoopSize, run_loop
from edgeloop.loop_demo.summary import print_summary

__all__ = ["FAST", "LoopResult", "LoopSize", "print_summary", "run_loop"]
