"""Rounds of a benchmark made into one measurement: the median run, and ratios taken run by run.

Input: the results of fresh-process runs (`run.measure`'s dicts, each with `wall_s` and
`cpu_s`). Output: the figures `python -m bench` reports for them.
"""

from __future__ import annotations

import statistics
from typing import Any


def paired(tops: list[dict[str, Any]], bottoms: list[dict[str, Any]]) -> dict[str, Any]:
    """The median over rounds of each round's ratio of CPU times, `tops[i] / bottoms[i]`, with
    every round's ratio: two runs made one after the other share the machine's state."""
    ratios = [t["cpu_s"] / b["cpu_s"] for t, b in zip(tops, bottoms, strict=True)]
    return {"median": statistics.median(ratios), "rounds": [round(r, 3) for r in ratios]}


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One measurement from several runs: the median run's figures with the median wall and CPU
    times, every run's wall time, the peak memory."""
    ranked = sorted(results, key=lambda r: r["wall_s"])
    middle = dict(ranked[(len(ranked) - 1) // 2])
    middle["wall_s"] = statistics.median(r["wall_s"] for r in results)
    middle["cpu_s"] = statistics.median(r["cpu_s"] for r in results)
    if all("critical_cpu_s" in r for r in results):
        middle["critical_cpu_s"] = statistics.median(r["critical_cpu_s"] for r in results)
    middle["runs"] = [round(r["wall_s"], 3) for r in results]
    middle["peak_rss_kb"] = max(r["peak_rss_kb"] for r in results)
    # Each round's own growth (its peak over what it had before the run): the largest peak less
    # the median round's start would mix two rounds.
    middle["growth_kb"] = [r["peak_rss_kb"] - r["base_rss_kb"] for r in results]
    return middle
