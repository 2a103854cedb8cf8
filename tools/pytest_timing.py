"""pytest plugin: seconds per test file (per notebook for nbval), setup and teardown included.

nbval starts a notebook's kernel in the setup of its first cell, so a notebook's total here
includes the kernel start, as a reader's run would. Written as JSON to $KDL_TIMES_JSON.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

_seconds: dict[str, float] = defaultdict(float)
_outcomes: dict[str, str] = {}
_items: dict[str, int] = defaultdict(int)


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    _seconds[path] += report.duration
    # One outcome per test: its call, or a setup that failed or skipped, or a failed teardown.
    if report.when == "call" or (report.when != "call" and report.outcome != "passed"):
        _items[report.outcome] += 1
    if report.failed:
        _outcomes[path] = "failed"
    else:
        _outcomes.setdefault(path, "passed")


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("KDL_TIMES_JSON")
    if not target:
        return
    files = {p: {"seconds": round(s, 2), "status": _outcomes.get(p, "passed")}
            for p, s in sorted(_seconds.items())}
    data = {"files": files, "items": dict(_items)}
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open(target, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1)
