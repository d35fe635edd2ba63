"""Engine snapshots of large shards written by a forked child, so that feeding never waits for one.

Input: a shard's engine right after a committed transaction, and the journal entry it is at.
Output: the engine's snapshot, kept in the store once the child has written it (`collect`).

A snapshot costs in proportion to the engine's state: about 2.5 s of CPU at 100,000 members
(pure Python, the engine of a 100k x 90 dry run). Taken in the committing thread, it held up
every request of the service for that long. A forked child holds the engine as it was at the
fork (the kernel copies pages only as the parent changes them), encodes it into a file and
exits; the parent goes on feeding at once and stores the file's snapshot at its next turn (the
file has no name, so nothing is left behind if the parent dies first). Small engines are still
snapshotted in the transaction (`APART_FROM`): there a fork costs more than it saves.

The child only encodes Python objects and writes a file, then leaves with `os._exit`: it touches
no lock, connection or thread of the parent (threads other than the forking one do not exist in
it), which is what makes a fork of a threaded process safe here.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import IO

from sopdsl.engine.engine import Engine
from sopdsl.errors import EngineError
from sopdsl.live.store import Store

log = logging.getLogger("sopdsl.runtime")

APART_FROM = 5_000  # members and flows from which a snapshot is written by a child (about 0.1 s in-thread)
_WAIT_AT_CLOSE = 60.0  # seconds `close` waits for children still writing, then ends them
_CAN_FORK = hasattr(os, "fork") and hasattr(os, "waitpid")


def apart(engine: Engine) -> bool:
    """Whether this engine's snapshot should be written by a child rather than in the transaction."""
    return _CAN_FORK and len(engine.members) + len(engine.flows) >= APART_FROM


@dataclass
class _Child:
    pid: int
    shard: str
    seq: int
    file: IO[bytes]  # nameless: nothing is left on disk if this process dies first


class Snapshots:
    """The children writing snapshots, one a shard at most; `fork`, then `collect` now and then, then `close`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._children: dict[str, _Child] = {}
        self.written = 0  # snapshots stored from a child (tests and the bench read it)

    def fork(self, shard: str, seq: int, engine: Engine) -> bool:
        """Start a child writing the shard's snapshot after entry `seq`; False if one still writes."""
        if shard in self._children:
            return False  # the next is due after another interval: this one is not lost
        file = tempfile.TemporaryFile(prefix="sopdsl-snapshot-")
        with warnings.catch_warnings():
            # Python 3.12 warns of any fork in a threaded process; the module says why this one is safe.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            _write(engine, file)
        self._children[shard] = _Child(pid, shard, seq, file)
        return True

    def collect(self, wait: float = 0.0) -> None:
        """Store the snapshots of the children that ended (waiting up to `wait` seconds for them)."""
        deadline = time.monotonic() + wait
        while self._children:
            for child in list(self._children.values()):
                pid, status = os.waitpid(child.pid, os.WNOHANG)
                if pid:
                    del self._children[child.shard]
                    self._keep(child, status)
            if not self._children or time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def close(self) -> None:
        """Store what children finish within a minute, and end the others."""
        try:
            self.collect(wait=_WAIT_AT_CLOSE)
        finally:
            for child in self._children.values():
                try:
                    os.kill(child.pid, signal.SIGKILL)
                    os.waitpid(child.pid, 0)
                except OSError:
                    pass
                child.file.close()
            self._children.clear()

    def _keep(self, child: _Child, status: int) -> None:
        try:
            child.file.seek(0)
            written = child.file.read()
            if os.waitstatus_to_exitcode(status) != 0:
                reason = written.decode("utf-8", "replace") or f"the child ended with status {status}"
                log.warning("sopdsl runtime: shard '%s': no snapshot taken: %s", child.shard, reason)
                return
            self.store.save_snapshot(child.shard, child.seq, written)
            self.written += 1
        except OSError as exc:
            log.warning("sopdsl runtime: shard '%s': no snapshot taken: %s", child.shard, exc)
        finally:
            child.file.close()


def _write(engine: Engine, file: IO[bytes]) -> None:
    """In the child: write the engine's snapshot to `file` (or why not, exiting with 1), and exit."""
    # No collection in the child: one could finalize an object it shares with the parent (a
    # database connection's, whose finalizer would say goodbye to the server on the parent's socket).
    gc.disable()
    code = 0
    try:
        _leave_parent(file)
        _encode(engine, file)
    except EngineError as exc:  # some state it cannot write: the journal still has it all
        code = failed(file, str(exc))
    except BaseException as exc:
        code = failed(file, f"{type(exc).__name__}: {exc}")
    os._exit(code)


def _leave_parent(file: IO[bytes]) -> None:
    """In the child: let go of the parent's signal handlers and of every file but `file`."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)  # the service's handlers belong to the parent
    signal.set_wakeup_fd(-1)  # ... and so does its event loop's wake-up socket
    # A listening socket held here would keep a restarted service from binding its port until
    # this child ends. (A database file or connection closed here stays open in the parent:
    # POSIX locks belong to the process that took them, and nothing is sent on a closed copy.)
    kept = file.fileno()
    os.closerange(3, kept)
    os.closerange(kept + 1, _open_files())


def _encode(engine: Engine, file: IO[bytes]) -> None:
    """In the child: the engine's snapshot, into `file`."""
    file.write(engine.snapshot())
    file.flush()


def _open_files() -> int:
    """One past the highest file descriptor this process may have open."""
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536


def failed(file: IO[bytes], reason: str) -> int:
    """In the child: put why it wrote no snapshot in place of one; the exit code that says so."""
    try:
        file.seek(0)
        file.truncate()
        file.write(reason.encode("utf-8"))
        file.flush()
    except BaseException:
        pass
    return 1
