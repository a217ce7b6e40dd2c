"""Tiny reproductions used by tests/test_reproduce_cli.py (imported by name in spawned worker processes).

Not a test module (pytest does not collect it); importing it registers the names below.
"""

from __future__ import annotations

import numpy as np

from rlref.reproduce import Context, Report, register

OK, FAIL, SEEDFAIL, SLOW = "fixture-ok", "fixture-fail", "fixture-fails-at-seed-1", "fixture-slow"


@register(OK, paper="nobody (2024)", description="two units and a claim that holds")
def run_ok(ctx: Context) -> Report:
    a = ctx.unit("a", lambda: float(np.arange(4.0).sum()))
    b = ctx.unit("b", lambda: 2.0 * a)
    ctx.claim("0+1+2+3 = 6, twice is 12", expected=[6.0, 12.0], measured=[a, b], tolerance=1e-12)
    return ctx.report("nobody (2024)")


@register(FAIL, paper="nobody (2024)", description="a claim that fails")
def run_fail(ctx: Context) -> Report:
    ctx.claim("1 + 1 equals 3", expected=3.0, measured=1.0 + 1.0, tolerance=0.1)
    return ctx.report("nobody (2024)")


@register(SEEDFAIL, paper="nobody (2024)", description="a claim that holds at every seed but 1")
def run_seedfail(ctx: Context) -> Report:
    measured = 1.0 if ctx.seed == 1 else 0.0
    ctx.claim("zero except at seed 1", expected=0.0, measured=measured, tolerance=0.5)
    return ctx.report("nobody (2024)")


@register(SLOW, paper="nobody (2024)", description="sleeps for a minute (to be interrupted)")
def run_slow(ctx: Context) -> Report:
    import time

    for _ in range(600):
        time.sleep(0.1)
    ctx.claim("slept", expected=0.0, measured=0.0, tolerance=0)
    return ctx.report("nobody (2024)")
