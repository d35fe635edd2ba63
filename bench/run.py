"""The engine benchmark: generated communities through `sopdsl simulate`'s code path.

Run: `.venv/bin/python bench/run.py [--quick | --full]` (or `.venv/bin/python -m bench`). Prints a
table and writes `bench/results/engine.json`; generated timelines are kept in `bench/results/`
(git-ignored) and reused while the generator is unchanged.

For each size (members × days, see bench/generate.py), each in a fresh process so peak memory
means something:

- `floor`: read the file and decode every line with a generic JSON decoder, nothing else;
- `engine`: end to end as `sopdsl simulate --format jsonl` does it: read and check every line,
  run bench/reference.sop through the engine, write the action log to a file; with the modules
  compiled as `pip install .` compiles them (mypyc, see setup.py; built once into
  bench/results/build/ by bench/compiled.py), unless `--pure`;
- `pure`: the `engine` run on the pure-Python modules (as an editable install runs): its log
  must equal the compiled engine's byte for byte (the run fails otherwise);
- `sharded`: the `engine` run with its members split across the cores (`sopdsl simulate --jobs`,
  sopdsl/dryrun/shard.py): its log must equal the engine's byte for byte (the run fails
  otherwise); its memory is each process's peak (the parent merging, each shard);
- `careful`: bench/careful.py, a hand-written engine for the five SOPs only (a timer heap, lazy
  silence deadlines, its own reader), end to end like `engine`: its log must equal the engine's,
  line for line, idempotency keys aside (the run fails otherwise);
- `simple`: bench/simple.py, the hour-by-hour reference engine, on the same timeline; its log
  must equal the engine's (the run fails otherwise).

The engine and both baselines run alternately, round after round, so the machine's load falls on
all of them alike; each figure is the median of `--runs` rounds, and the table gives the ratio
engine ÷ careful baseline (issue 11: at most 1.0 is required, 0.5 is the goal).

Also: the doubling check (half the members, same days), a quiet year (no events: only the
calendar, and then a quiet year with members present), and the compile time of a generated
1 MB playbook file (bench/frontend.py's generator). Times are wall clock (CPU time is recorded
too); the machine is shared.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import re
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
from compiled import put_first_on_path  # noqa: E402

put_first_on_path()  # a compiled build (SOPDSL_BENCH_LIB), before the pure tree

from generate import Size, generate, quiet  # noqa: E402
from rounds import paired, summary  # noqa: E402
from run_table import print_table  # noqa: E402

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
        # In a process of its own: a measurement's process is started from this one, and Linux
        # counts the peak memory of the process it was started from in its own (`ru_maxrss`
        # survives `exec`), so a generator's 200 MB here would show as every run's peak.
        made = subprocess.run(
            [
                sys.executable,
                str(Path(__file__)),
                "--generate",
                str(size.members),
                str(size.days),
                str(size.seed),
                str(path),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        counts = json.loads(made.stdout)
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
    from sopdsl.engine.actions import json_lines
    from sopdsl.plan import timeutil

    return json_lines(out.write, timeutil.zone("Asia/Shanghai"))


def log_path(timeline: Path, what: str) -> Path:
    """Where a run of `what` over a timeline writes its action log (the engine's is compared)."""
    return RESULTS / "logs" / f"{timeline.stem}-{what}.jsonl"


def measure(what: str, path: Path) -> dict[str, Any]:
    """One run of `what` (floor, reader, engine, careful, simple) over a timeline, in this process.

    `careful` and `simple` compare their logs with the log the last `engine` run wrote.
    """
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
    elif what in ("engine", "figures", "pure"):
        log = log_path(path, what)
        log.parent.mkdir(parents=True, exist_ok=True)
        stream = open_timeline(path, path.name, "Asia/Shanghai")
        collector = None
        if what == "figures":  # the same run counting its figures, as `sopdsl report` does
            from sopdsl.figures import Collector

            collector = Collector("Asia/Shanghai")
        with log.open("wb") as out:
            engine = simulate_timeline(plan, stream, _log_writer(out), figures=collector)
        stream.close()
        if collector is not None:
            result["group_days"] = sum(len(days) for days in collector.figures().groups.values())
        wall_done, cpu_done = time.perf_counter(), time.process_time()
        if what != "engine":
            # Counting figures must not change what the engine decides, nor compiling it.
            result["equal"] = filecmp.cmp(log, log_path(path, "engine"), shallow=False)
            result["first_difference"] = None if result["equal"] else "the log differs from the engine's"
        result["actions"] = sum(1 for _ in log.open("rb"))
        result["log_bytes"] = log.stat().st_size
        if what != "engine":
            log.unlink()
        result["members"] = len(engine.members)
        result["timers_left"] = len(engine.heap)
        result["wall_s"], result["cpu_s"] = wall_done - wall, cpu_done - cpu
    elif what == "sharded":  # the same run, its members split across the cores (sopdsl simulate --jobs)
        from sopdsl.dryrun.shard import simulate_sharded

        log = log_path(path, what)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with log.open("wb") as out:
            run = simulate_sharded(
                plan, path, path.name, "Asia/Shanghai", _log_writer, out, os.cpu_count() or 1
            )
        wall_done = time.perf_counter()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        children = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        result["jobs"], result["reason"] = run.jobs, run.reason
        result["equal"] = filecmp.cmp(log, log_path(path, "engine"), shallow=False)
        result["first_difference"] = None if result["equal"] else "the sharded log differs from the engine's"
        result["actions"] = sum(1 for _ in log.open("rb"))
        log.unlink()
        # Each shard's peak, what it had at the fork, and its CPU time: the longest path (the
        # parent's set-up and merge, the slowest shard) is what a loaded machine's clock hides.
        for name in ("peak_rss_kb", "start_rss_kb", "cpu_s", "members"):
            result[f"shard_{name}"] = [s[name] for s in run.shards]
        result["critical_cpu_s"] = time.process_time() - cpu + max(result["shard_cpu_s"], default=0.0)
        result["wall_s"], result["cpu_s"] = wall_done - wall, time.process_time() - cpu + children
    elif what == "careful":
        from careful import first_difference, run_file

        log = log_path(path, "careful")
        run_file(
            {name: t.source for name, t in plan.declarations.templates.items()}, "Asia/Shanghai", path, log
        )
        wall_done, cpu_done = time.perf_counter(), time.process_time()
        result["actions"] = sum(1 for _ in log.open("rb"))
        result["first_difference"] = first_difference(log_path(path, "engine"), log)
        result["equal"] = result["first_difference"] is None
        log.unlink()
        result["wall_s"], result["cpu_s"] = wall_done - wall, cpu_done - cpu
    elif what == "simple":
        from simple import SimpleEngine, log_rows

        stream = open_timeline(path, path.name, "Asia/Shanghai")
        rows = SimpleEngine(plan, "Asia/Shanghai").run(stream)
        stream.close()
        wall_done, cpu_done = time.perf_counter(), time.process_time()
        ours = log_rows(log_path(path, "engine"))
        result["actions"] = len(rows)
        result["equal"] = ours == rows
        if ours != rows:
            pairs = zip(ours, rows, strict=False)
            first = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(ours), len(rows)))
            result["first_difference"] = (
                f"row {first}: engine {ours[first : first + 1]} != simple {rows[first : first + 1]}"
            )
        result["wall_s"], result["cpu_s"] = wall_done - wall, cpu_done - cpu
    from sopdsl.engine import engine as engine_module

    result["compiled"] = (engine_module.__file__ or "").endswith(".so")
    if "wall_s" not in result:
        result["wall_s"], result["cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["base_rss_kb"] = base_kb
    return result


_LIB: list[Path] = []  # the compiled build, once `main` has it (none with --pure)


def _child(what: str, path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "SOPDSL_BENCH_LIB"}
    if _LIB and what != "pure":
        env["SOPDSL_BENCH_LIB"] = str(_LIB[0])
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "--one", what, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} on {path.name} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def median(what: str, path: Path, runs: int) -> dict[str, Any]:
    """The median of `runs` fresh-process runs (wall clock), with every run's times kept."""
    return summary([_child(what, path) for _ in range(runs)])


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


def run_size(size: Size, runs: int, with_simple: bool, figures: bool = False) -> dict[str, Any]:
    """Floor, reader, engine, the careful baseline (and the simple one) on one size, in rounds.

    Each round runs every one of them once, the engine first (the baselines check their logs
    against its log), so a change in the machine's load falls on all of them alike.
    """
    path = timeline(size)
    n = 1 if size.members * size.days >= 20_000_000 else runs  # 1M x 30: once
    simple = with_simple and size.members * size.days <= SIMPLE_UP_TO
    # The figures' run and the careful baseline right after the engine's: on a machine whose
    # speed drifts over a round (a VM's neighbours), a ratio of two runs made one after the other
    # (`paired`, below) varies far less than a ratio of two medians taken minutes apart.
    order = [
        "floor",
        "reader",
        "engine",
        *(["figures"] if figures else []),
        "careful",
        *(["pure"] if _LIB else []),
        "sharded",
        *(["simple"] if simple else []),
    ]
    rounds: dict[str, list[dict[str, Any]]] = {what: [] for what in order}
    for _ in range(n):
        for what in order:
            result = _child(what, path)
            if not result.get("equal", True):
                raise SystemExit(
                    f"{size.name}: the {what} engine's log differs: {result['first_difference']}"
                )
            rounds[what].append(result)
    log_path(path, "engine").unlink(missing_ok=True)
    row: dict[str, Any] = {"size": size.name, "members": size.members, "days": size.days, "rounds": n}
    row["bytes"] = path.stat().st_size
    row.update({what: summary(results) for what, results in rounds.items()})
    row["events"] = row["floor"]["lines"] - 1 - sum(1 for _ in _member_lines(path))
    engine = row["engine"]
    row["events_per_s"] = row["events"] / engine["wall_s"]
    row["events_per_cpu_s"] = row["events"] / engine["cpu_s"]
    row["vs_floor"] = engine["wall_s"] / row["floor"]["wall_s"]
    row["engine_over_careful"] = engine["wall_s"] / row["careful"]["wall_s"]
    row["engine_over_careful_cpu"] = engine["cpu_s"] / row["careful"]["cpu_s"]
    if "pure" in row:
        row["pure_over_careful"] = row["pure"]["wall_s"] / row["careful"]["wall_s"]
        row["compiled_over_pure"] = engine["wall_s"] / row["pure"]["wall_s"]
    row["engine_over_careful_paired"] = paired(rounds["engine"], rounds["careful"])
    if "figures" in row:
        row["figures_over_engine"] = row["figures"]["wall_s"] / engine["wall_s"]
        row["figures_over_engine_cpu"] = row["figures"]["cpu_s"] / engine["cpu_s"]
        row["figures_over_engine_paired"] = paired(rounds["figures"], rounds["engine"])
    if "simple" in row:
        row["simple_over_engine"] = row["simple"]["wall_s"] / engine["wall_s"]
        row["simple_over_careful"] = row["simple"]["wall_s"] / row["careful"]["wall_s"]
    # The worst round's: issue 11's bound holds for every run, not a typical one.
    row["bytes_per_member"] = max(engine["growth_kb"]) * 1024 / size.members
    row["bytes_per_member_rounds"] = [kb * 1024 / size.members for kb in engine["growth_kb"]]
    sharded = row["sharded"]
    row["sharded_events_per_s"] = row["events"] / sharded["wall_s"]
    row["sharded_over_engine"] = sharded["wall_s"] / engine["wall_s"]
    row["sharded_over_careful"] = sharded["wall_s"] / row["careful"]["wall_s"]
    row["sharded_over_careful_cpu_all"] = sharded["cpu_s"] / row["careful"]["cpu_s"]
    if "critical_cpu_s" in sharded:
        row["sharded_cpu_speedup"] = engine["cpu_s"] / sharded["critical_cpu_s"]
        row["sharded_over_careful_cpu"] = sharded["critical_cpu_s"] / row["careful"]["cpu_s"]
        row["sharded_events_per_cpu_s"] = row["events"] / sharded["critical_cpu_s"]
    # The largest process (a shard or the parent), and what the shards' state took together: each
    # shard's peak over what it had from the fork (one process's figure when it ran in one).
    peaks = sharded.get("shard_peak_rss_kb") or [sharded["peak_rss_kb"]]
    starts = sharded.get("shard_start_rss_kb") or [sharded["base_rss_kb"]]
    row["sharded_peak_kb"] = max([*peaks, sharded["peak_rss_kb"]])
    row["sharded_bytes_per_member"] = (
        sum(p - s for p, s in zip(peaks, starts, strict=True)) * 1024 / size.members
    )
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
        out[label] = median("engine", path, runs)
        log_path(path, "engine").unlink(missing_ok=True)
    return out


def parse_sizes(text: str) -> list[Size]:
    """Sizes named as the table names them, comma-separated: `10kx365,100kx90`."""
    sizes = []
    for name in text.split(","):
        match = re.fullmatch(r"(\d+)([kM]?)[x×](\d+)", name.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"{name!r} is not a size like 10kx365")
        scale = {"": 1, "k": 1000, "M": 1_000_000}[match[2]]
        sizes.append(Size(int(match[1]) * scale, int(match[3])))
    return sizes


def main() -> None:
    """Run the suite, print the table, write bench/results/engine.json."""
    options = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    mode = options.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1k×365 and 10k×90 only, one run each")
    mode.add_argument("--full", action="store_true", help="also 1M members × 30 days")
    mode.add_argument(
        "--sizes",
        type=parse_sizes,
        help="only these sizes, e.g. 10kx365,100kx90 (issue 11's two); no quiet year, no compile time",
    )
    options.add_argument(
        "--figures", action="store_true", help="also the engine counting its figures (sopdsl report's run)"
    )
    options.add_argument("--runs", type=int, default=3, help="rounds per size (the median is kept)")
    options.add_argument(
        "--pure", action="store_true", help="measure the pure-Python modules only (no compiled build)"
    )
    options.add_argument("--one", nargs=2, metavar=("WHAT", "TIMELINE"), help=argparse.SUPPRESS)
    options.add_argument(
        "--generate", nargs=4, metavar=("MEMBERS", "DAYS", "SEED", "PATH"), help=argparse.SUPPRESS
    )
    args = options.parse_args()
    if args.generate:
        members, days, seed, path = args.generate
        print(json.dumps(generate(Size(int(members), int(days), int(seed)), Path(path))))
        return
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]))))
        return
    if not args.pure:
        from compiled import compiled_lib

        _LIB.append(compiled_lib())
    sizes = args.sizes or (QUICK if args.quick else FULL if args.full else STANDARD)
    runs = 1 if args.quick else args.runs
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "compiled": bool(_LIB),
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
        results["sizes"].append(run_size(size, runs, with_simple=True, figures=args.figures))
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # partial results
    rows = {r["size"]: r for r in results["sizes"]}
    if "50kx90" in rows and "100kx90" in rows:
        results["doubling"] = rows["100kx90"]["engine"]["wall_s"] / rows["50kx90"]["engine"]["wall_s"]
    if not args.quick and not args.sizes:
        print("quiet year ...", flush=True)
        results["quiet_year"] = quiet_year(Size(100_000, 365), runs)
    if not args.sizes:
        print("compile 1 MB ...", flush=True)
        results["compile"] = compile_time(runs)
    print_table(results)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
