"""`python -m bench`'s printed table: each size's figures, the ratios and the targets they meet."""

from __future__ import annotations

from typing import Any

HEADLINE = ["10kx365", "100kx90"]  # where issue 11 asks for engine ÷ careful


def print_table(results: dict[str, Any]) -> None:
    """Print the sizes' figures and the ratios `main` measured (`results` as written to engine.json)."""
    print()
    head = f"{'size':<9} {'events':>9} {'actions':>8} {'floor s':>8} {'engine s':>9} {'events/s':>9} "
    head += f"{'×floor':>7} {'careful s':>9} {'eng÷care':>8} {'simple s':>9} {'sim÷care':>8} {'sim÷eng':>7} "
    head += f"{'peak MB':>8} {'B/member':>9} {'jobs':>4} {'shards s':>8} {'shard ev/s':>10} {'shard MB':>8} "
    head += f"{'B/member':>9}"
    print(head)
    for r in results["sizes"]:
        e = r["engine"]
        simple = r.get("simple")
        simple_s = f"{simple['wall_s']:.2f}" if simple else "n/a"
        over_careful = f"{r['simple_over_careful']:.1f}" if simple else "n/a"
        over_engine = f"{r['simple_over_engine']:.1f}" if simple else "n/a"
        print(
            f"{r['size']:<9} {r['events']:>9,} {e['actions']:>8,} {r['floor']['wall_s']:>8.2f} "
            f"{e['wall_s']:>9.2f} {r['events_per_s']:>9,.0f} {r['vs_floor']:>7.1f} "
            f"{r['careful']['wall_s']:>9.2f} {r['engine_over_careful']:>8.2f} "
            f"{simple_s:>9} {over_careful:>8} {over_engine:>7} "
            f"{e['peak_rss_kb'] / 1024:>8.0f} {r['bytes_per_member']:>9,.0f} "
            f"{r['sharded']['jobs']:>4} {r['sharded']['wall_s']:>8.2f} {r['sharded_events_per_s']:>10,.0f} "
            f"{r['sharded_peak_kb'] / 1024:>8.0f} {r['sharded_bytes_per_member']:>9,.0f}"
        )
        if r["sharded"].get("reason"):
            print(f"  {r['size']}: the sharded run used one process: {r['sharded']['reason']}")
    fewer = "".join(
        f", {r['size']}: {r['rounds']}" for r in results["sizes"] if r["rounds"] != results["runs"]
    )
    print(
        f"(median of {results['runs']} rounds{fewer}, each running all of them in turn; engine and careful"
        " = read + simulate + write the log, engine checking every line)"
    )
    print(
        "shards = the engine's run with its members split across the cores, the log merged (equal to the"
        " engine's); shard MB = the largest process, its B/member = all shards together"
    )
    speedups = [
        f"{r['size']} {r['sharded_cpu_speedup']:.2f} ({r['events'] / r['sharded']['critical_cpu_s']:,.0f} events/s)"
        for r in results["sizes"]
        if "sharded_cpu_speedup" in r
    ]
    if speedups:
        print(
            f"sharded, by CPU time on its longest path (parent + slowest shard), engine ÷ it: {', '.join(speedups)}"
        )
    print(
        "engine ÷ careful baseline (issue 11: at most 1.0, goal 0.5; the careful baseline runs in one process):"
    )
    for r in results["sizes"]:
        if r["size"] not in HEADLINE and len(results["sizes"]) > 2:
            continue
        sharded = r["sharded"]
        line = (
            f"  {r['size']:<8} one process: {r['engine_over_careful']:.2f} by wall clock, "
            f"{r['engine_over_careful_cpu']:.2f} by CPU time"
        )
        if "sharded_over_careful_cpu" in r:
            line += (
                f" | sharded ({sharded['jobs']} processes): {r['sharded_over_careful']:.2f} by wall clock, "
                f"{r['sharded_over_careful_cpu']:.2f} by CPU time on its longest path, "
                f"{r['sharded_over_careful_cpu_all']:.2f} by CPU time of all its processes"
            )
        print(line)
    pure = [
        f"{r['size']} {r['compiled_over_pure']:.2f} (pure ÷ careful {r['pure_over_careful']:.2f})"
        for r in results["sizes"]
        if "compiled_over_pure" in r
    ]
    if pure:
        print(f"engine compiled (as pip install . builds it) ÷ pure Python, same log: {', '.join(pure)}")
    elif not results.get("compiled"):
        print("(--pure: the engine ran on the pure-Python modules, as an editable install runs it)")
    print("events/s end to end (read, simulate, write the log):")
    for r in results["sizes"]:
        line = (
            f"  {r['size']:<8} one process {r['events_per_s']:,.0f} by wall clock "
            f"({r['events_per_cpu_s']:,.0f} by CPU time)"
        )
        line += f" | sharded {r['sharded_events_per_s']:,.0f} by wall clock"
        if "sharded_events_per_cpu_s" in r:
            line += f" ({r['sharded_events_per_cpu_s']:,.0f} by CPU time on its longest path)"
        print(line)
    load = results["machine"]["load_average_at_start"][0]
    print(
        f"(wall clock on a machine with load {load:.1f} at the start on {results['machine']['cpus']} cpus: "
        "where the load is near the cores or above, the CPU times are the figures to compare)"
    )
    costs = [
        f"{r['size']} {r['figures_over_engine']:.3f} (CPU time {r['figures_over_engine_cpu']:.3f})"
        for r in results["sizes"]
        if "figures_over_engine" in r
    ]
    if costs:
        print(f"engine with figures ÷ engine, of the medians: {', '.join(costs)} (issue 15: at most 1.10)")
    for key, label in (
        ("engine_over_careful_paired", "engine ÷ careful, one process"),
        ("figures_over_engine_paired", "engine with figures ÷ engine"),
    ):
        pairs = [
            f"{r['size']} {r[key]['median']:.3f} (rounds {', '.join(f'{x:.3f}' for x in r[key]['rounds'])})"
            for r in results["sizes"]
            if key in r
        ]
        if pairs:
            print(
                f"{label}, the median of each round's ratio of CPU times (run one after the other): {'; '.join(pairs)}"
            )
    if "doubling" in results:
        print(f"doubling the members (50k → 100k, 90 days): time × {results['doubling']:.2f}")
    if "quiet_year" in results:
        q = results["quiet_year"]
        for label, r in q.items():
            print(
                f"quiet year, {label}: {r['wall_s']:.2f} s, {r['actions']:,} actions, {r['members']:,} members"
            )
    if "compile" in results:
        c = results["compile"]
        print(f"compile {c['bytes'] / 1e6:.2f} MB of playbooks (load + check + compile): {c['best_s']:.2f} s")
