"""Every series `GET /metrics` serves is described in docs/service.md's table, so an operator
wiring alerts finds what each one means."""

from __future__ import annotations

import io
import re
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

from runtime_helpers import START, Recorder, plan_of

from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.live.service import Service

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "service.md"


def test_every_series_served_on_metrics_is_in_the_docs_table() -> None:
    clock = ManualClock(START)
    runtime = Runtime(plan_of(), "memory://", executors=Recorder(clock).executors(), clock=clock)
    service = Service(runtime, zone=ZoneInfo("Asia/Shanghai"), port=0, tick_every=0.05, log=io.StringIO())
    service.start()
    try:
        with urllib.request.urlopen(service.url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        service.stop()
    served = {m.group(1) for m in re.finditer(r"^# TYPE (\S+) ", text, re.M)}
    table = DOCS.read_text(encoding="utf-8").split("## Health and metrics", 1)[1].split("\n## ", 1)[0]
    described = set(re.findall(r"^\| `(sopdsl_[a-z_]+)", table, re.M))
    assert {name for name in served if name.startswith("sopdsl_")} - described == set()
