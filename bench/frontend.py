"""Front-end benchmark: parser construction, parse and check of a 1 MB playbook file.

Run: `.venv/bin/python bench/frontend.py` (options: `--runs N`, `--size BYTES`, `--quick`,
`--parser driver|lark`: which parse path, see `sopdsl.syntax.parser.PARSERS`).

Generates two playbook files deterministically (a fixed seed, no wall clock in the text):

- `realistic`: like the files operators write, scaled up: declarations, Chinese template text
  blocks of typical length (about half of the bytes), and playbooks with triggers, guards,
  calendar entries and nested steps;
- `dense`: the same constructs with no template text, so almost every byte is a token.

Then measures, best of several runs, with the numbers written to `bench/results/frontend.json`:

- parser construction in a fresh process: cold (empty parser cache) and warm (cache filled by
  the previous process), plus a whole `sopdsl check` of a small file, cold and warm;
- parse (text to `nodes.File`), check (`nodes.File` to `model.Program`) and the total
  (`loader.load` of the file from disk, then `check_program`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sopdsl.checker import check_program  # noqa: E402
from sopdsl.plan.compiler import compile_program  # noqa: E402
from sopdsl.source import Source  # noqa: E402
from sopdsl.syntax.loader import LoadedProgram, load  # noqa: E402
from sopdsl.syntax.parser import PARSERS, parse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from playbook_text import SEED, SIZE, Stats, generate  # noqa: E402

__all__ = ["SEED", "SIZE", "Stats", "best_of", "generate"]

RESULTS = ROOT / "bench" / "results"


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, list[float]]:
    """The fastest of `runs` timed calls (seconds), and all of them."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


_CONSTRUCT = (
    "import time; t0 = time.perf_counter(); import sopdsl.syntax.parser as p; t1 = time.perf_counter(); "
    "p.lark_parser(); t2 = time.perf_counter(); print(t1 - t0, t2 - t1)"
)


def _subprocess(args: list[str], cache: Path) -> tuple[float, str]:
    env = {**os.environ, "SOPDSL_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{args} failed: {done.stderr}")
    return wall, done.stdout


def construction(runs: int) -> dict[str, Any]:
    """Parser construction in fresh processes, with an empty and with a filled cache."""
    cold: list[float] = []
    warm: list[float] = []
    cli_cold: list[float] = []
    cli_warm: list[float] = []
    python = sys.executable
    cli = str(Path(python).with_name("sopdsl"))
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.sop"
        small.write_text(generate("realistic", 4000)[0], encoding="utf-8")
        for run in range(runs):
            cache = Path(tmp) / f"cache-{run}"
            _, out = _subprocess([python, "-c", _CONSTRUCT], cache)
            cold.append(float(out.split()[1]))
            _, out = _subprocess([python, "-c", _CONSTRUCT], cache)
            warm.append(float(out.split()[1]))
            cli_cache = Path(tmp) / f"cli-cache-{run}"
            cli_cold.append(_subprocess([cli, "check", str(small)], cli_cache)[0])
            cli_warm.append(_subprocess([cli, "check", str(small)], cli_cache)[0])
    return {
        "construct_cold_s": min(cold),
        "construct_warm_s": min(warm),
        "cli_check_small_cold_s": min(cli_cold),
        "cli_check_small_warm_s": min(cli_warm),
        "runs": runs,
        "samples": {"cold": cold, "warm": warm, "cli_cold": cli_cold, "cli_warm": cli_warm},
    }


def frontend(kind: str, size: int, runs: int, folder: Path) -> dict[str, Any]:
    """Parse, check and total times for one generated file."""
    text, stats = generate(kind, size)
    path = folder / f"{kind}.sop"
    path.write_text(text, encoding="utf-8")
    source = Source(path.name, text)
    parse(source)  # build the parser outside the timings
    tree = parse(source)
    loaded = LoadedProgram(root=source.path, files=[tree], sources={source.path: source})
    result = check_program(loaded)
    errors = [d for d in result.diagnostics if d.is_error]
    if errors:
        raise SystemExit(f"the generated {kind} file does not check: {errors[:3]}")
    parse_s, parse_all = best_of(runs, lambda: parse(source))
    check_s, check_all = best_of(runs, lambda: check_program(loaded))
    total_s, total_all = best_of(runs, lambda: check_program(load(path)))
    program = result.program
    assert program is not None
    compile_s, compile_all = best_of(runs, lambda: compile_program(program))

    def everything() -> None:
        checked = check_program(load(path)).program
        assert checked is not None
        compile_program(checked)

    all_s, all_all = best_of(runs, everything)
    return {
        "bytes": stats.bytes,
        "lines": stats.lines,
        "template_share": round(stats.template_bytes / stats.bytes, 3),
        "templates": stats.templates,
        "playbooks": stats.playbooks,
        "declarations": stats.declarations,
        "warnings": len(result.diagnostics),
        "parse_s": parse_s,
        "check_s": check_s,
        "total_s": total_s,
        "compile_s": compile_s,
        "load_check_compile_s": all_s,
        "samples": {
            "parse": parse_all,
            "check": check_all,
            "total": total_all,
            "compile": compile_all,
            "load_check_compile": all_all,
        },
        "parse_median_s": statistics.median(parse_all),
        "check_median_s": statistics.median(check_all),
        "total_median_s": statistics.median(total_all),
    }


def main() -> None:
    """Run the benchmark, print a table and write `bench/results/frontend.json`."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=5, help="runs per measurement (best is kept)")
    options.add_argument("--size", type=int, default=SIZE, help="bytes per generated file")
    options.add_argument("--quick", action="store_true", help="one run each, for a smoke test")
    options.add_argument("--keep", type=Path, help="also write the generated files to this folder")
    options.add_argument(
        "--parser",
        choices=PARSERS,
        default="driver",
        help="the parse path: the private LALR driver or Lark's own parser with inline builders",
    )
    args = options.parse_args()
    os.environ["SOPDSL_PARSER"] = args.parser  # read by `parse`, here and in the subprocesses
    runs = 1 if args.quick else args.runs
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "command": "python bench/frontend.py"
        + (" --quick" if args.quick else f" --runs {runs}")
        + f" --parser {args.parser}",
        "size": args.size,
        "parser": args.parser,
    }
    try:
        import lark
        import pydantic

        results["machine"]["lark"] = lark.__version__
        results["machine"]["pydantic"] = pydantic.VERSION
    except ImportError:  # pragma: no cover - both are dependencies
        pass
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results["construction"] = construction(max(1, min(runs, 3)))
        for kind in ("realistic", "dense"):
            results[kind] = frontend(kind, args.size, runs, folder)

    c = results["construction"]
    print(f"machine: {results['machine']}")
    print(f"parser: {args.parser}")
    print()
    print("parser construction (fresh process)      best")
    print(f"  cold (empty cache)                 {c['construct_cold_s'] * 1000:8.0f} ms")
    print(f"  warm (cache filled)                {c['construct_warm_s'] * 1000:8.0f} ms")
    print(f"  `sopdsl check small.sop`, cold     {c['cli_check_small_cold_s'] * 1000:8.0f} ms")
    print(f"  `sopdsl check small.sop`, warm     {c['cli_check_small_warm_s'] * 1000:8.0f} ms")
    print()
    print(
        f"{'file':<10} {'bytes':>9} {'tmpl%':>6} {'parse ms':>9} {'check ms':>9} {'total ms':>9}"
        f" {'compile ms':>10} {'+compile ms':>11}"
    )
    for kind in ("realistic", "dense"):
        r = results[kind]
        print(
            f"{kind:<10} {r['bytes']:>9} {r['template_share'] * 100:>5.0f}% "
            f"{r['parse_s'] * 1000:>9.0f} {r['check_s'] * 1000:>9.0f} {r['total_s'] * 1000:>9.0f}"
            f" {r['compile_s'] * 1000:>10.0f} {r['load_check_compile_s'] * 1000:>11.0f}"
        )
    print(f"(best of {runs}; total = load from disk + check_program; +compile = total then compile_program)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("frontend.json" if args.parser == "driver" else f"frontend-{args.parser}.json")
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
