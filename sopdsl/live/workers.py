"""`sopdsl run --workers N`: N service processes on one port and one PostgreSQL store, supervised.

Input: how many workers, their base name, and a function that runs one worker's service in the
current process until it is stopped (returning its exit code). Output: that many forked worker
processes, each named `BASE-1` ... `BASE-N`, each listening on the same port with `SO_REUSEPORT`
(the kernel spreads connections over them); SIGINT and SIGTERM stop them all, SIGHUP is passed on
to each (each reads the playbooks again). A worker that dies after its start is started again
under its own name, so it takes its shards' leases and its claimed outbox rows back at once
(while it is away, the others take them as the leases expire). A worker that fails at start
(bad plan, store refused) stops the whole command with its exit code.

Nothing is routed here: a request reaches any worker, which feeds it. A shard is applied by one
worker at a time (it holds the shard's lease); another worker's feed for it is journaled in its
own committed transaction and answered, and the holder, woken by the store once that commits
(`Store.watch`), applies it at once (see docs/runtime.md, "Shards and several workers").
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from collections.abc import Callable
from types import FrameType

STARTUP = 5.0  # seconds: a worker exiting with an error code sooner failed to start; later, it crashed
RESTART_AFTER = 1.0  # seconds before a crashed worker is started again


def names(base: str, count: int) -> list[str]:
    """The workers' names: stable, so a restarted worker (or service) reclaims its own leases at once."""
    return [f"{base}-{n}" for n in range(1, count + 1)]


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound (not listening) to the port, with SO_REUSEPORT: holds it, and picks one for port 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def supervise(workers: list[str], child: Callable[[str], int], say: Callable[[str], None]) -> int:
    """Fork one process per worker name running `child(name)`; wait, restart, stop. The exit code."""
    running: dict[int, tuple[str, float]] = {}
    stopping = False

    def spawn(name: str) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 70  # EX_SOFTWARE, if `child` raised
            try:
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                code = child(name)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        running[pid] = (name, time.monotonic())

    def stop_all(signum: int = signal.SIGTERM) -> None:
        for pid in list(running):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def on_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        stop_all()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        stop_all(signal.SIGHUP)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, on_stop),
        signal.SIGTERM: signal.signal(signal.SIGTERM, on_stop),
        signal.SIGHUP: signal.signal(signal.SIGHUP, on_hangup),
    }
    code = 0
    try:
        for name in workers:
            spawn(name)
        while running:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            name, began = running.pop(pid)
            exited = os.waitstatus_to_exitcode(status)
            if stopping:
                continue
            # An error exit soon after the start is a failure to start (a bad plan, a refused store);
            # death by a signal (negative) is a crash at any time, and the worker starts again.
            if exited > 0 and time.monotonic() - began < STARTUP:
                say(f"sopdsl run: worker {name} failed to start (exit code {exited}); stopping")
                code = exited
                stopping = True
                stop_all()
                continue
            say(f"sopdsl run: worker {name} exited (code {exited}); starting it again")
            time.sleep(RESTART_AFTER)
            if not stopping:
                spawn(name)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code
