"""``pmfin demo``: a realistic, deterministic PenguinMails history (generator, loader, reset).

``run_demo`` and ``reset_demo`` (in ``pmfin.demo.service``) are what the command calls.
"""

from pmfin.demo.service import DemoRequest, DemoResult, ResetResult, reset_demo, run_demo

__all__ = ["DemoRequest", "DemoResult", "ResetResult", "reset_demo", "run_demo"]
