"""Sharing a results folder between workers: run claims with heartbeats.

Several workers (two notebooks, two GPUs, two shells) may point `matrix` at one results folder. A worker
claims a run before training it: `results/claims/<key>.json`, created atomically (write a temporary file,
then os.link it to the claim's name, which fails when the name is taken; O_CREAT|O_EXCL where the file
system has no hard links). The claim holds the owner's host, pid, start time and heartbeat; a background
thread rewrites the heartbeat every PEFT_IMDB_CLAIM_HEARTBEAT_S seconds while the run trains. Another
worker skips a claimed run, unless the claim is stale: its owner's process is gone (same host, checked
with os.kill(pid, 0)), or its heartbeat is older than PEFT_IMDB_CLAIM_TIMEOUT_S (default 600 s). A stale
claim is taken over under a short lock (`<key>.json.takeover`): only the lock's holder removes it, and
only if it still holds the stale token; then every taker races fairly for the atomic creation.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError

TIMEOUT_ENV = "PEFT_IMDB_CLAIM_TIMEOUT_S"
HEARTBEAT_ENV = "PEFT_IMDB_CLAIM_HEARTBEAT_S"
DEFAULT_TIMEOUT_S = 600.0
LOCK_STALE_S = 30.0  # a takeover lock older than this was left by a taker that died


# --- claims -----------------------------------------------------------------------------------------

def claim_timeout_s() -> float:
    """Seconds without a heartbeat after which a claim counts as abandoned (PEFT_IMDB_CLAIM_TIMEOUT_S)."""
    return _env_seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)


def heartbeat_s() -> float:
    """Seconds between heartbeats (PEFT_IMDB_CLAIM_HEARTBEAT_S; default a quarter of the timeout, at most 60)."""
    return _env_seconds(HEARTBEAT_ENV, min(60.0, claim_timeout_s() / 4))


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1
    if value <= 0:
        raise UserError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


def claims_dir(root: str | os.PathLike | None = None) -> Path:
    """Where claims live: results/claims/ (beside runs/; merge never copies it)."""
    from ..results import results_dir

    return results_dir(root) / "claims"


def claim_path(key: str, root: str | os.PathLike | None = None) -> Path:
    return claims_dir(root) / f"{key}.json"


def _host() -> str:
    return socket.gethostname()


def _process_started(pid: int) -> float | None:
    """Start time of a process (psutil, when installed), to tell a reused pid from the owner."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # psutil missing, or no such process
        return None


def _now() -> float:
    return time.time()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


@dataclass
class Holder:
    """Who holds a claim, as read from its file."""

    key: str
    host: str = "?"
    pid: int = -1
    token: str = ""
    started: float = 0.0
    heartbeat: float = 0.0
    pid_started: float | None = None
    readable: bool = True

    @property
    def owner(self) -> str:
        return f"{self.host}:{self.pid}"

    def describe(self) -> str:
        age = max(0.0, _now() - self.heartbeat)
        return f"claimed by {self.owner} (since {_iso(self.started)}, heartbeat {age:.0f}s ago)"


def read_claim(path: Path) -> Holder | None:
    """The claim at path, or None when there is none. An unreadable one is a Holder with readable=False."""
    try:
        text = path.read_text()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        holder = Holder(key=str(data["key"]), host=str(data["host"]), pid=int(data["pid"]),
                        token=str(data["token"]), started=float(data["started"]),
                        heartbeat=float(data["heartbeat"]), pid_started=data.get("pid_started"))
    except (ValueError, KeyError, TypeError):  # being written (O_EXCL fallback) or damaged
        return Holder(key=path.stem, heartbeat=mtime, started=mtime, readable=False)
    holder.heartbeat = max(holder.heartbeat, mtime)  # a touch counts as a heartbeat too
    return holder


def stale_reason(holder: Holder, timeout_s: float | None = None) -> str | None:
    """Why this claim's owner is gone ('' is never returned), or None while it is alive."""
    timeout_s = claim_timeout_s() if timeout_s is None else timeout_s
    if holder.readable and holder.host == _host() and holder.pid > 0:
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return f"its process {holder.owner} is gone"
        except PermissionError:
            pass  # alive, another user's
        started = _process_started(holder.pid)
        if holder.pid_started is not None and started is not None and abs(started - holder.pid_started) > 1:
            return f"its process {holder.owner} is gone (the pid now belongs to another process)"
        if _is_zombie(holder.pid):
            return f"its process {holder.owner} is gone (a zombie)"
        return None  # alive on this host: it heartbeats while it trains
    age = _now() - holder.heartbeat
    if age > timeout_s:
        return f"no heartbeat for {age:.0f}s (more than {TIMEOUT_ENV}={timeout_s:g})"
    return None


def _is_zombie(pid: int) -> bool:
    try:
        import psutil

        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except Exception:
        return False


def _create_exclusive(path: Path, text: str) -> bool:
    """Create path holding text, atomically and only if it does not exist; False when it does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)  # fails if path exists: readers never see a part
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                raise
        try:  # no hard links here (some network / FUSE folders): O_EXCL, then the content
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


_HELD: dict[str, "Claim"] = {}  # path -> claim, released at exit


class Claim:
    """A run claimed by this process: heartbeats while held; release() removes it if it is still ours."""

    def __init__(self, path: Path, holder: Holder):
        self.path, self.holder = path, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"claim-heartbeat-{holder.key}", daemon=True)
        self._thread.start()
        _HELD[str(path)] = self

    @property
    def key(self) -> str:
        return self.holder.key

    def _beat(self) -> None:
        interval = heartbeat_s()
        while not self._stop.wait(interval):
            self.heartbeat()

    def heartbeat(self) -> bool:
        """Rewrite the heartbeat (atomically) if the claim is still ours; False when it was taken over."""
        current = read_claim(self.path)
        if current is None or current.token != self.holder.token:
            return False
        self.holder.heartbeat = _now()
        try:
            from ..results import atomic_write_text

            atomic_write_text(self.path, _claim_text(self.holder))
        except OSError:  # a full disk: touching still says "alive"
            try:
                os.utime(self.path)
            except OSError:
                pass
        return True

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file, unless another worker has taken it over."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        _HELD.pop(str(self.path), None)
        current = read_claim(self.path)
        if current is not None and current.token == self.holder.token:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _claim_text(holder: Holder) -> str:
    return json.dumps({
        "key": holder.key, "host": holder.host, "pid": holder.pid, "pid_started": holder.pid_started,
        "token": holder.token, "started": holder.started, "started_at": _iso(holder.started),
        "heartbeat": holder.heartbeat, "heartbeat_at": _iso(holder.heartbeat),
        "argv": sys.argv,
    }, indent=1) + "\n"


def acquire(key: str, root: str | os.PathLike | None = None, log=print) -> Claim | Holder:
    """Claim run `key` in the store: a Claim when this process may train it, else the live Holder.

    A stale claim (owner gone) is taken over, reported through log.
    """
    path = claim_path(key, root)
    for _ in range(50):
        now = _now()
        mine = Holder(key=key, host=_host(), pid=os.getpid(), token=uuid.uuid4().hex, started=now,
                      heartbeat=now, pid_started=_process_started(os.getpid()))
        if _create_exclusive(path, _claim_text(mine)):
            return Claim(path, mine)
        holder = read_claim(path)
        if holder is None:
            continue  # released meanwhile: try again
        reason = stale_reason(holder)
        if reason is None:
            return holder
        if not _remove_if_unchanged(path, holder.token):
            time.sleep(0.01)  # another taker is removing it, or took it over: look again
            continue
        log(f"{key}: taking over the claim of {holder.owner}: {reason}")
    holder = read_claim(path)
    return holder if holder is not None else Holder(key=key, readable=False)


def _remove_if_unchanged(path: Path, token: str) -> bool:
    """Remove the stale claim at path, but only while it still holds token; True when this call removed it.

    Takers serialise on a lock file (path + '.takeover', created atomically): only its holder may remove
    the claim, after reading it again, so a fresh claim written meanwhile by a faster taker is never
    removed. A lock older than LOCK_STALE_S (its taker died between two lines) is cleared.
    """
    lock = path.with_name(path.name + ".takeover")
    if not _create_exclusive(lock, f"{_host()}:{os.getpid()}\n"):
        try:
            if _now() - lock.stat().st_mtime > LOCK_STALE_S:
                lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        current = read_claim(path)
        if current is None or current.token != token:
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        lock.unlink(missing_ok=True)


@atexit.register
def release_all() -> None:
    """Release this process's claims (at exit; a SIGKILL leaves them to be taken over)."""
    for claim in list(_HELD.values()):
        try:
            claim.release()
        except Exception:
            pass
