"""The engine benchmark: generated communities through `sopdsl simulate`'s code path.

Run: `.venv/bin/python bench/run.py [--quick | --full]` (or `.venv/bin/python -m bench`). Prints a
table and writes `bench/results/engine.json`; generated timelines are kept in `bench/results/`
(git-ignored) and reused while the generator is unchanged.

For each size (members × days, see bench/generate.py), each in a fresh process so peak memory
means something:

- `floor`: read the file and decode every line with a generic JSON decoder, nothing else;
- `engine`: end to end as `sopdsl simulate --format jsonl` does it: read and check every line,
  run bench/reference.sop through the engine, write the action log to a file;
- `simple`: bench/simple.py, the hour-by-hour reference engine, on the same timeline; its log
  must equal the engine's (the run fails otherwise).

Also: the doubling check (half the members, same days), a quiet year (no events: only the
calendar, and then a quiet year with members present), and the compile time of a generated
1 MB playbook file (bench/frontend.py's generator). Times are the best of `--runs` (wall clock;
CPU time is recorded too), because the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from generate import Size, generate, quiet  # noqa: E402

RESULTS = BENCH / "results"
PLAYBOOK = BENCH / "reference.sop"
GENERATOR_VERSION = 3  # bump when generate.py changes what it writes

QUICK = [Size(1000, 365), Size(10_000, 90)]
STANDARD = [Size(1000, 365), Size(10_000, 365), Size(50_000, 90), Size(100_000, 90)]
FULL = [*STANDARD, Size(1_000_000, 30)]
SIMPLE_UP_TO = 100_000 * 90  # member-days; the simple engine's hourly scans beyond that take too long


def timeline(size: Size) -> Path:
    """The generated timeline of a size, generated on first use."""
    path = RESULTS / "timelines" / f"{size.name}-s{size.seed}-v{GENERATOR_VERSION}.jsonl"
    if not path.exists():
        started = time.perf_counter()
        counts = generate(size, path)
        print(
            f"  generated {path.name}: {counts['events']:,} events in {time.perf_counter() - started:.0f} s"
        )
    return path


# ---- one measurement, in its own process -----------------------------------------------------------


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _plan() -> Any:
    import sopdsl

    return sopdsl.compile_program(sopdsl.check(sopdsl.load(PLAYBOOK)))


def _log_writer(out: Any) -> Any:
    """Write each action as `sopdsl simulate --format jsonl` does: its JSON form, keys sorted."""
    import msgspec

    from sopdsl.plan import timeutil

    tz = timeutil.zone("Asia/Shanghai")
    encode = msgspec.json.Encoder(order="sorted").encode
    write = out.write

    def log(action: Any) -> None:
        write(encode(action.to_json(tz)) + b"\n")

    return log


def measure(what: str, path: Path) -> dict[str, Any]:
    """One run of `what` (floor, reader, engine, simple) over a timeline, in this process."""
    import msgspec

    from sopdsl.dryrun.simulate import simulate_timeline
    from sopdsl.dryrun.timeline import open_timeline

    plan = _plan()
    base_kb = _rss_kb()
    result: dict[str, Any] = {"what": what}
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "floor":
        decode = msgspec.json.Decoder().decode
        lines = 0
        with path.open("rb") as stream:
            for line in stream:
                decode(line)
                lines += 1
        result["lines"] = lines
    elif what == "reader":
        stream = open_timeline(path, path.name, "Asia/Shanghai")
        result["records"] = sum(1 for _ in stream.records())
        stream.close()
    elif what == "engine":
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "log.jsonl"
            stream = open_timeline(path, path.name, "Asia/Shanghai")
            with log.open("wb") as out:
                engine = simulate_timeline(plan, stream, _log_writer(out))
            stream.close()
            wall_done, cpu_done = time.perf_counter(), time.process_time()
            result["actions"] = sum(1 for _ in log.open("rb"))
            result["log_bytes"] = log.stat().st_size
        result["members"] = len(engine.members)
        result["timers_left"] = len(engine.heap)
        result["wall_s"], result["cpu_s"] = wall_done - wall, cpu_done - cpu
    elif what == "simple":
        from simple import SimpleEngine, engine_rows

        stream = open_timeline(path, path.name, "Asia/Shanghai")
        rows = SimpleEngine(plan, "Asia/Shanghai").run(stream)
        stream.close()
        wall_done, cpu_done = time.perf_counter(), time.process_time()
        actions: list[Any] = []
        stream = open_timeline(path, path.name, "Asia/Shanghai")
        simulate_timeline(plan, stream, actions.append)
        stream.close()
        ours = engine_rows(actions)
        result["actions"] = len(rows)
        result["equal"] = ours == rows
        if ours != rows:
            first = next((i for i, (a, b) in enumerate(zip(ours, rows, strict=False)) if a != b), None)
            result["first_difference"] = {
                "index": first,
                "engine": str(ours[first] if first is not None else None),
            }
            result["first_difference"]["simple"] = str(rows[first] if first is not None else None)
        result["wall_s"], result["cpu_s"] = wall_done - wall, cpu_done - cpu
    if "wall_s" not in result:
        result["wall_s"], result["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["base_rss_kb"] = base_kb
    return result


def _child(what: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--one", what, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} on {path.name} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def best(what: str, path: Path, runs: int) -> dict[str, Any]:
    """The fastest of `runs` fresh-process runs (wall clock), with every run's times kept."""
    results = [_child(what, path) for _ in range(runs)]
    fastest = min(results, key=lambda r: r["wall_s"])
    fastest["runs"] = [round(r["wall_s"], 3) for r in results]
    fastest["peak_rss_kb"] = max(r["peak_rss_kb"] for r in results)
    return fastest


# ---- the suite -----------------------------------------------------------------------------------


def compile_time(runs: int) -> dict[str, Any]:
    """Load, check and compile a generated 1 MB playbook file (bench/frontend.py's generator)."""
    from frontend import SIZE, best_of
    from frontend import generate as playbook_text

    import sopdsl

    text, stats = playbook_text("realistic", SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.sop"
        path.write_text(text, encoding="utf-8")
        sopdsl.compile_program(sopdsl.check(sopdsl.load(path)))  # the parser is built outside the timing
        seconds, samples = best_of(runs, lambda: sopdsl.compile_program(sopdsl.check(sopdsl.load(path))))
    return {"bytes": stats.bytes, "playbooks": stats.playbooks, "best_s": seconds, "runs": samples}


def run_size(size: Size, runs: int, with_simple: bool) -> dict[str, Any]:
    """Floor, reader, engine (and the simple engine) on one size."""
    path = timeline(size)
    # Large sizes run fewer times: 1M x 30 once, 50k-100k x 90 twice.
    n = 1 if size.members * size.days >= 20_000_000 else min(runs, 2) if size.members >= 50_000 else runs
    row: dict[str, Any] = {"size": size.name, "members": size.members, "days": size.days}
    row["bytes"] = path.stat().st_size
    row["floor"] = best("floor", path, n)
    row["events"] = row["floor"]["lines"] - 1 - sum(1 for _ in _member_lines(path))
    row["reader"] = best("reader", path, n)
    row["engine"] = best("engine", path, n)
    if with_simple and size.members * size.days <= SIMPLE_UP_TO:
        row["simple"] = best("simple", path, 1)
        if not row["simple"]["equal"]:
            raise SystemExit(
                f"{size.name}: the simple engine's log differs: {row['simple']['first_difference']}"
            )
    engine = row["engine"]
    row["events_per_s"] = row["events"] / engine["wall_s"]
    row["vs_floor"] = engine["wall_s"] / row["floor"]["wall_s"]
    if "simple" in row:
        row["simple_over_engine"] = row["simple"]["wall_s"] / engine["wall_s"]
    row["bytes_per_member"] = (engine["peak_rss_kb"] - engine["base_rss_kb"]) * 1024 / size.members
    return row


def _member_lines(path: Path) -> Any:
    with path.open("rb") as stream:
        next(stream)
        for line in stream:
            if line.startswith(b'{"id"'):
                yield line
            else:
                return


def quiet_year(size: Size, runs: int) -> dict[str, Any]:
    """A year without events: the groups of `size` alone, then with its members present."""
    out: dict[str, Any] = {}
    for label, members in (("calendar_only", False), ("members_present", True)):
        path = RESULTS / "timelines" / f"quiet-{label}-{size.name}-v{GENERATOR_VERSION}.jsonl"
        if not path.exists():
            quiet(Size(size.members, 365, size.seed), path, members)
        out[label] = best("engine", path, runs)
    return out


def main() -> None:
    """Run the suite, print the table, write bench/results/engine.json."""
    options = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = options.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1k×365 and 10k×90 only, one run each")
    mode.add_argument("--full", action="store_true", help="also 1M members × 30 days")
    options.add_argument("--runs", type=int, default=3, help="runs per measurement (the best is kept)")
    options.add_argument("--one", nargs=2, metavar=("WHAT", "TIMELINE"), help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]))))
        return
    sizes = QUICK if args.quick else FULL if args.full else STANDARD
    runs = 1 if args.quick else args.runs
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "command": "python bench/run.py" + (" --quick" if args.quick else " --full" if args.full else ""),
        "runs": runs,
        "sizes": [],
    }
    print(
        f"machine: {os.cpu_count()} cpus, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "engine.json"
    for size in sizes:
        print(f"{size.name} ...", flush=True)
        results["sizes"].append(run_size(size, runs, with_simple=True))
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # partial results
    rows = {r["size"]: r for r in results["sizes"]}
    if "50kx90" in rows and "100kx90" in rows:
        results["doubling"] = rows["100kx90"]["engine"]["wall_s"] / rows["50kx90"]["engine"]["wall_s"]
    if not args.quick:
        print("quiet year ...", flush=True)
        results["quiet_year"] = quiet_year(Size(100_000, 365), runs)
    print("compile 1 MB ...", flush=True)
    results["compile"] = compile_time(runs)
    _table(results)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


def _table(results: dict[str, Any]) -> None:
    print()
    head = f"{'size':<9} {'events':>9} {'actions':>8} {'floor s':>8} {'engine s':>9} {'events/s':>9} "
    head += f"{'×floor':>7} {'simple s':>9} {'×faster':>8} {'peak MB':>8} {'B/member':>9}"
    print(head)
    for r in results["sizes"]:
        e = r["engine"]
        simple = r.get("simple")
        simple_s = f"{simple['wall_s']:.2f}" if simple else "n/a"
        faster = f"{r['simple_over_engine']:.1f}" if simple else "n/a"
        print(
            f"{r['size']:<9} {r['events']:>9,} {e['actions']:>8,} {r['floor']['wall_s']:>8.2f} "
            f"{e['wall_s']:>9.2f} {r['events_per_s']:>9,.0f} {r['vs_floor']:>7.1f} "
            f"{simple_s:>9} {faster:>8} "
            f"{e['peak_rss_kb'] / 1024:>8.0f} {r['bytes_per_member']:>9,.0f}"
        )
    print(f"(best of {results['runs']} wall-clock runs; engine = read + check + simulate + write the log)")
    if "doubling" in results:
        print(f"doubling the members (50k → 100k, 90 days): time × {results['doubling']:.2f}")
    if "quiet_year" in results:
        q = results["quiet_year"]
        for label, r in q.items():
            print(
                f"quiet year, {label}: {r['wall_s']:.2f} s, {r['actions']:,} actions, {r['members']:,} members"
            )
    c = results["compile"]
    print(f"compile {c['bytes'] / 1e6:.2f} MB of playbooks (load + check + compile): {c['best_s']:.2f} s")


if __name__ == "__main__":
    main()
