"""Start-up benchmark: wall time of short commands in fresh processes, median of several runs.

Run: `.venv/bin/python bench/startup.py` (options: `--runs N`, default 10; `--importtime`: also
list the modules `sopdsl check` spends the most time importing; `--instructions`: also count each
command's instructions under valgrind's callgrind, the same on a busy machine as on a quiet one).

Measures, each in a new process (the parser caches, Lark's and the driver's tables, filled, and
the bytecode caches written, by a first, untimed run: the child processes run without PYTHONDONTWRITEBYTECODE, since an
installed copy has its .pyc files and recompiling changed sources on every run is not start-up):

- `sopdsl --version`
- `sopdsl check playbooks/J1_welcome_ritual.sop` (a small file that includes common.sop)
- `python -c "import sopdsl.cli"`

The target for `check` is 0.3 s. Numbers go to `bench/results/startup.json`.

`--installed` measures sopdsl as users run it: installed from a wheel (`pip install .`) into a venv
of its own (`bench/results/installed-venv`, rebuilt each time), not the development checkout's
editable install, whose import hook and source-tree lookups cost every process some 100 ms more.
The output says which was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SMALL = "playbooks/J1_welcome_ritual.sop"
TARGET_S = 0.3


def commands() -> dict[str, list[str]]:
    python = sys.executable
    cli = str(Path(python).with_name("sopdsl"))
    return {
        "sopdsl --version": [cli, "--version"],
        f"sopdsl check {SMALL}": [cli, "check", SMALL],
        'python -c "import sopdsl.cli"': [
            python,
            "-P",
            "-c",
            "import sopdsl.cli",
        ],  # -P: not the checkout over an install
    }


def child_env() -> dict[str, str]:
    """The environment of the measured processes: ours, but free to write bytecode caches."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(args: list[str]) -> float:
    """Seconds from starting `args` to its exit."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, check=False, env=child_env())
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{args} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def instructions(args: list[str]) -> int | None:
    """Instructions `args` executes, counted by callgrind (None without valgrind)."""
    if shutil.which("valgrind") is None:
        return None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if found else None


def import_times(top: int = 15) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, module) of the slowest imports of `sopdsl check`, slowest first."""
    code = f"import sys; sys.argv = ['sopdsl', 'check', {SMALL!r}]; from sopdsl.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = line[len("import time:") :].split("|")
        rows.append((int(own), int(total), name.rstrip()))
    return sorted(rows, key=lambda row: -row[1])[:top]


def installed_python() -> str:
    """A venv with sopdsl installed from this checkout as a wheel would be; its python."""
    venv = RESULTS / "installed-venv"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", str(ROOT)], check=True)
    return python


def install_form() -> str:
    """How the measured sopdsl is installed: 'editable' (imported from this checkout) or 'installed'."""
    code = "import sopdsl, pathlib; print(pathlib.Path(sopdsl.__file__).resolve())"
    where = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    # The installed venv lives under bench/results: only the checkout's own package is editable.
    return "editable" if Path(where.stdout.strip()).is_relative_to(ROOT / "sopdsl") else "installed"


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--runs", type=int, default=10, help="runs per command (the median is kept)")
    options.add_argument("--importtime", action="store_true", help="also list the slowest imports of check")
    options.add_argument("--installed", action="store_true", help="measure a wheel install (see above)")
    options.add_argument("--instructions", action="store_true", help="also count instructions (callgrind)")
    args = options.parse_args()
    if args.installed:
        python = installed_python()
        rest = [a for a in sys.argv[1:] if a != "--installed"]
        raise SystemExit(
            subprocess.run([python, str(Path(__file__).resolve()), *rest], check=False).returncode
        )
    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_before": os.getloadavg(),
        },
        "command": f"python bench/startup.py --runs {args.runs}",
        "install": install_form(),
    }
    timings: dict[str, dict[str, object]] = {}
    for name, argv in commands().items():
        wall(argv)  # fills the parser cache, warms the file system cache
        samples = [wall(argv) for _ in range(args.runs)]
        timings[name] = {"median_s": statistics.median(samples), "min_s": min(samples), "samples": samples}
        if args.instructions:
            timings[name]["instructions"] = instructions(argv)
    results["timings"] = timings
    results["machine"]["load_after"] = os.getloadavg()  # type: ignore[index]
    load = results["machine"]
    print(
        f"machine: {os.cpu_count()} cpus, python {platform.python_version()}, load {load['load_before'][0]:.2f} -> {load['load_after'][0]:.2f}; sopdsl {results['install']}"
    )  # type: ignore[index]
    print(f"{'command':<52} {'median ms':>10} {'min ms':>8} {'instructions':>14}")
    for name, row in timings.items():
        counted = f"{row['instructions']:,}" if row.get("instructions") else ""
        print(f"{name:<52} {row['median_s'] * 1000:>10.0f} {row['min_s'] * 1000:>8.0f} {counted:>14}")  # type: ignore[operator]
    check = timings[f"sopdsl check {SMALL}"]["median_s"]
    results["target"] = {"check_median_s": TARGET_S, "met": check <= TARGET_S}  # type: ignore[operator]
    print(
        f"(median of {args.runs} runs each; target for check: {TARGET_S * 1000:.0f} ms: "
        f"{'met' if check <= TARGET_S else 'not met'})"
    )  # type: ignore[operator]
    if args.importtime:
        rows = import_times()
        results["importtime_check"] = [{"self_us": s, "cumulative_us": c, "module": m} for s, c, m in rows]
        print("\nslowest imports of `sopdsl check` (python -X importtime), cumulative:")
        for own, total, name in rows:
            print(f"  {total / 1000:7.1f} ms  (self {own / 1000:5.1f} ms)  {name}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "startup.json"
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
