"""The job wrapper: runs one job's command and records, durably, how it ended.

Run inside the job's tmux pane (or detached) as `python -I -S -c "import wrapper;
wrapper.run(JOBDIR)"` (executors.wrapper_argv) or `python -I -S wrapper.py JOBDIR`. It needs
nothing but the standard library and never calls a gflow command, so a job whose PATH lacks
gflow still ends correctly. It:
  - starts the command on its own pseudo-terminal, in its own session and process group,
    with the submitter's environment, working directory and umask (JOBDIR/spec.marshal,
    read as a regular file without following a link);
  - copies the command's output to the log file and to its own stdout (the tmux pane),
    and to Slurm's --output / --error files when the job has them;
  - pins the command to the CPU cores the scheduler booked for it, and sends Slurm's
    --signal at its time (to the srun steps, or with B: to the script alone);
  - writes JOBDIR/pid on start and JOBDIR/exit (exit code or signal) at the end, each with
    write-temp, fsync, rename, so the daemon can read the truth even after a crash;
  - forwards SIGTERM/SIGINT/SIGHUP to every process of the job, and when the command ends
    kills what it left behind (it is a child subreaper, so no orphan escapes it);
  - enforces the job's time limit itself (SIGTERM to every process of the job, SIGKILL
    after the grace period), so a limit holds while the daemon is stopped; the exit record
    says so (`timed_out`), and the daemon records Timeout;
  - records a job that could not even start (its working directory is gone) as
    `launch_failed`, not as the command's own exit 1;
  - notes a SIGHUP (its terminal is gone: tmux was killed) in the exit record, and keeps
    going on a full disk: output that cannot be logged is counted and said, and the exit
    record is written as soon as space returns.
"""

from __future__ import annotations

import _ctypes
import errno
import fcntl
import marshal
import os
import pty
import select
import struct
import sys
import termios
import time

# Every job pays for this module's start-up, so it imports only C modules where it can:
# `json` (re, enum), `signal` (enum), `typing` and `ctypes` would add about 20 ms of CPU per
# job (ctypes alone ~6 ms; `_ctypes`, its C core, is enough for one prctl call).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import Any
else:
    import _signal as signal

PR_SET_CHILD_SUBREAPER = 36
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
MAX_RETRY_DELAY = 2.0  # seconds between tries to write a record on a full disk
LOST_WHY = "the log could not be written (disk full?)"
SPEC_FILE = "spec.marshal"  # written by the daemon (jobfiles.write_spec)
MAX_SPEC_BYTES = 64 << 20  # far above any spec the daemon writes (env <= 2 MiB)


def main(jobdir: str) -> int:
    spec = _read_spec(os.path.join(jobdir, SPEC_FILE))
    if spec.get("inherit"):  # in a Slurm job: Slurm's own variables (SLURM_*, its GPUs)
        prefixes = tuple(spec["inherit"])
        inherited = {k: v for k, v in os.environ.items() if k.startswith(prefixes)}
        spec["env"] = {**spec["env"], **inherited}
    _become_subreaper()
    pending: list[int] = []
    child = 0
    hangup = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal hangup
        hangup = hangup or signum == signal.SIGHUP
        if child:
            _signal_tree(os.getpid(), signum, child)
        else:
            pending.append(signum)

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    log = Log(spec["log"])
    try:  # here, not in the child: a job that cannot start is not the command's exit 1
        os.chdir(spec["cwd"])
    except OSError as exc:
        log.write(f"gflow: cannot enter working directory {spec['cwd']}: {exc.strerror}\n".encode())
        log.close()
        record = {"exit_code": None, "signal": None, "ended_at": time.time(), "hangup": False}
        _write_durably(os.path.join(jobdir, "exit"), {**record, "launch_failed": True})
        return 0
    if spec.get("cgroup") and not _wait_for_cgroup(spec["cgroup"], 10.0):
        log.write(f"gflow: not moved into memory cgroup {spec['cgroup']} in time\n".encode())
        log.close()
        record = {"exit_code": None, "signal": None, "ended_at": time.time(), "hangup": False}
        _write_durably(os.path.join(jobdir, "exit"), {**record, "launch_failed": True})
        return 0
    outputs = Outputs(spec, log)
    err_read, err_write = os.pipe() if outputs.error_fd is not None else (-1, -1)
    child, master = pty.fork()
    if child == 0:
        if err_write >= 0:  # --error apart from --output: stderr through its own pipe
            os.dup2(err_write, 2)
            os.close(err_write)
            os.close(err_read)
        _exec_job(spec)  # never returns
    if err_write >= 0:
        os.close(err_write)
    _copy_window_size(src=1, dst=master)
    _write_durably(
        os.path.join(jobdir, "pid"),
        {"wrapper_pid": os.getpid(), "pgid": child, "start_ticks": start_ticks(os.getpid())},
    )
    for signum in pending:
        _signal_tree(os.getpid(), signum, child)
    limit = Limit(spec.get("time_limit"), spec.get("kill_grace", 30.0), child, log)
    status = _pump_until_exit(
        child, master, outputs, limit, err_read, _warning(spec), not spec.get("quiet")
    )
    try:
        _kill_leftovers(child)
        _drain(master, outputs)
        if err_read >= 0:
            _drain(err_read, outputs, outputs.error_fd)
    except Exception as exc:  # the exit record matters more than a tidy cleanup
        log.write(f"gflow: cleanup after the job failed: {exc!r}\n".encode())
    outputs.close()
    log.close()
    code = os.waitstatus_to_exitcode(status)
    record = {
        "exit_code": code if code >= 0 else None,
        "signal": -code if code < 0 else None,
        "ended_at": time.time(),
        "hangup": hangup,
        "timed_out": limit.reached,
        **_children_usage(),
    }
    _write_durably(os.path.join(jobdir, "exit"), record)
    if spec.get("exit_as_job"):  # a Slurm job: Slurm's own record says the same
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        return code
    return 0


def _wait_for_cgroup(name: str, timeout: float) -> bool:
    """The daemon moves the wrapper into its job's memory cgroup right after the launch:
    wait for that before the command is forked, so all of the job is born inside."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            with open("/proc/self/cgroup") as f:
                if any(line.rstrip("\n").split(":", 2)[-1] == name for line in f):
                    return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _read_spec(path: str) -> dict[str, Any]:
    """The daemon's spec: a regular file, opened without following a link or blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o170000 != 0o100000 or info.st_size > MAX_SPEC_BYTES:
            raise OSError(errno.EINVAL, f"{path} is not a job spec")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    spec: dict[str, Any] = marshal.loads(b"".join(chunks))
    return spec


class Limit:
    """The job's time limit, counted from the wrapper's start: at the limit SIGTERM to every
    process of the job, SIGKILL after the grace. The daemon does the same from its side;
    whichever comes first stops the job, and this one holds while no daemon runs."""

    def __init__(self, seconds: int | None, grace: float, child: int, log: Log) -> None:
        start = time.monotonic()
        self.term_at = start + seconds if seconds else None
        self.kill_at: float | None = None
        self.seconds, self.grace, self.child, self.log = seconds, grace, child, log
        self.reached = False

    def timeout(self) -> float | None:
        """Seconds until the next thing to do, for select(); None: nothing to wait for."""
        due = self.kill_at if self.reached else self.term_at
        return None if due is None else max(0.0, due - time.monotonic())

    def act(self) -> None:
        """Called after each wake-up: send whatever is due."""
        now = time.monotonic()
        if not self.reached and self.term_at is not None and now >= self.term_at:
            self.reached = True
            self.kill_at = now + self.grace
            note = f"\ngflow: time limit of {self.seconds} s reached; sending SIGTERM\n"
            self.log.write(note.encode())
            _signal_tree(os.getpid(), signal.SIGTERM, self.child)
        elif self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self.log.write(b"gflow: the job ignored SIGTERM; sending SIGKILL\n")
            _signal_tree(os.getpid(), signal.SIGKILL, self.child)


class Log:
    """The job's log file. A write that fails (a full disk) never stops the job: the lost
    bytes are counted, and said in the log once writing works again."""

    def __init__(self, path: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self.fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            os.unlink(path)  # a link where the log goes: replaced, never written through
            self.fd = os.open(path, flags | os.O_EXCL, 0o600)
        self.lost = 0

    def write(self, data: bytes) -> None:
        try:
            if self.lost:
                _write_all(self.fd, self._lost_note())
                self.lost = 0
            _write_all(self.fd, data)
        except OSError:
            self.lost += len(data)

    def close(self) -> None:
        """Say what was lost, waiting for room if need be: the log must not lie by omission."""
        if self.lost:
            note = self._lost_note()
            _until_there_is_room(lambda: _write_all(self.fd, note))
        os.close(self.fd)

    def _lost_note(self) -> bytes:
        return f"\ngflow: {self.lost} bytes of output lost: {LOST_WHY}\n".encode()


class Outputs:
    """Slurm's --output / --error files, written as the job runs, beside the log (which
    stays, for gjob log). A file that cannot be written is said once in the log."""

    def __init__(self, spec: dict[str, Any], log: Log) -> None:
        self.log = log
        mode = os.O_APPEND if spec.get("append") else os.O_TRUNC
        # The user's own files, in their directories: made as the job would make them.
        self.permissions = 0o666 & ~spec.get("umask", 0o022)
        self.output_fd = self._open(spec.get("output") or "", mode)
        error = spec.get("error") or ""
        self.error_fd = self._open(error, mode) if error and error != spec.get("output") else None
        # A Slurm job's --error: sbatch opened it as our stderr, and it is not echoed
        # to the job's output as a pane's stderr is.
        self.echo_errors = not spec.get("stderr_apart")
        if not self.echo_errors:
            self.error_fd = os.dup(2)

    def _open(self, path: str, mode: int) -> int | None:
        if not path:
            return None
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | mode
            return os.open(path, flags, self.permissions)
        except OSError as exc:
            self.log.write(f"gflow: cannot write {path}: {exc.strerror}\n".encode())
            return None

    def write(self, data: bytes, fd: int | None = -1) -> None:
        self.log.write(data)
        target = self.output_fd if fd == -1 else fd
        if target is not None:
            try:
                _write_all(target, data)
            except OSError:
                pass  # the log still has it

    def close(self) -> None:
        for fd in (self.output_fd, self.error_fd):
            if fd is not None:
                os.close(fd)


def _exec_job(spec: dict[str, Any]) -> None:
    """In the child: the pty is our stdin/stdout/stderr and controlling terminal."""
    try:
        attrs = termios.tcgetattr(1)
        attrs[1] &= ~termios.ONLCR  # keep '\n' as '\n' in the log
        termios.tcsetattr(1, termios.TCSANOW, attrs)
    except (OSError, termios.error):
        pass
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    os.umask(spec.get("umask", 0o022))  # the submitter's, not the daemon's private 077
    if spec.get("cpus"):
        try:  # the cores the scheduler booked for it (--cpus-per-task, --ntasks)
            os.sched_setaffinity(0, spec["cpus"])
        except OSError as exc:
            os.write(2, f"gflow: cannot pin the job to CPUs {spec['cpus']}: {exc}\n".encode())
    try:
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        os.write(2, f"gflow: cannot run {spec['argv'][0]}: {exc.strerror}\n".encode())
    os._exit(127)


def _pump_until_exit(
    child: int,
    master: int,
    log: Outputs,
    limit: Limit,
    err_fd: int = -1,
    warning: tuple[float, int, bool] | None = None,
    pane: bool = True,
) -> int:
    """Copy output until the command exits; return its wait status. The time limit is
    kept on the way; with `warning` (at, signal, batch only), that signal is sent at that
    time (Slurm's --signal)."""
    pidfd = os.pidfd_open(child)
    stdin_fd = 0 if os.isatty(0) else -1
    out_fd: int | None = 1 if pane else None  # no pane: a Slurm job's output is the log
    master_open = True
    while True:
        watched = (
            [pidfd]
            + ([master] if master_open else [])
            + ([stdin_fd] if stdin_fd >= 0 else [])
            + ([err_fd] if err_fd >= 0 else [])
        )
        timeout = None if warning is None else max(0.0, warning[0] - time.time())
        try:
            ready, _, _ = select.select(watched, [], [], _soonest(timeout, limit.timeout()))
        except InterruptedError:
            continue
        limit.act()
        if warning is not None and time.time() >= warning[0]:
            if warning[2]:
                _signal_one(child, warning[1])
            else:
                _signal_steps(os.getpid(), warning[1])
            warning = None
        if err_fd >= 0 and err_fd in ready:
            data = _read(err_fd)
            if data:
                log.write(data, log.error_fd)
                if log.echo_errors:
                    out_fd = _copy_out(data, None, out_fd)
            else:
                err_fd = -1
        if master_open and master in ready:
            data = _read(master)
            if data:
                out_fd = _copy_out(data, log, out_fd)
            else:
                master_open = False
        if stdin_fd >= 0 and stdin_fd in ready:
            data = _read(stdin_fd)
            if data:
                _write_all(master, data)
            else:
                stdin_fd = -1
        if pidfd in ready:
            _, status = os.waitpid(child, 0)
            os.close(pidfd)
            return status


def _warning(spec: dict[str, Any]) -> tuple[float, int, bool] | None:
    """--signal's (at, signal, batch only): so many seconds after this start, where the
    time limit (ours, or Slurm's) is counted from too."""
    if spec.get("warning_after") is None:
        return None
    after, signum, batch_only = spec["warning_after"]
    return (time.time() + after, signum, batch_only)


def _children_usage() -> dict[str, Any]:
    """What every process the wrapper reaped used (the command, and with it whatever it left
    behind): CPU seconds, and the largest one's peak RSS. Counts short-lived processes the
    daemon's once-a-second look never saw. Imported here: not on every job's start path."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"cpu_seconds": used.ru_utime + used.ru_stime, "max_rss_kb": used.ru_maxrss}


def _soonest(a: float | None, b: float | None) -> float | None:
    """The sooner of two select() timeouts (None: no timeout)."""
    return b if a is None else a if b is None else min(a, b)


def _signal_steps(root: int, signum: int) -> None:
    """Slurm's --signal without B: every job step, not the batch shell. A step is what
    srun started: it and its children carry SLURM_STEP_ID in their environment."""
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if b"\0SLURM_STEP_ID=" in b"\0" + f.read():
                    os.kill(pid, signum)
        except OSError:
            pass


def _signal_one(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _copy_out(data: bytes, log: Outputs | None, out_fd: int | None) -> int | None:
    if log is not None:
        log.write(data)
    if out_fd is not None:
        try:
            _write_all(out_fd, data)
        except OSError:
            return None  # the pane is gone (tmux killed); the log still gets everything
    return out_fd


def _drain(master: int, log: Outputs, fd: int | None = -1) -> None:
    os.set_blocking(master, False)
    while data := _read(master):
        log.write(data, fd)
    os.close(master)


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""
    except OSError as exc:
        if exc.errno == errno.EIO:  # Linux: the pty's other side is closed
            return b""
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _kill_leftovers(child: int) -> None:
    """The command ended: whatever it left running (background jobs, daemons) goes too."""
    me = os.getpid()
    for _ in range(50):
        try:
            os.killpg(child, signal.SIGKILL)
        except OSError:
            pass
        if not _signal_tree(me, signal.SIGKILL, child):
            break
        _reap_some()
    _reap_some()


def _signal_tree(root: int, signum: int, pgid: int) -> bool:
    """Send a signal to every descendant of `root` and to the job's process group."""
    targets = _descendants(root)
    for pid in targets:
        try:
            os.kill(pid, signum)
        except OSError:
            pass
    try:
        os.killpg(pgid, signum)
    except OSError:
        pass
    return bool(targets)


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = _stat_field(int(entry), 4)
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for pid in children.get(stack.pop(), []):
            found.append(pid)
            stack.append(pid)
    return found


def _reap_some() -> None:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _stat_field(pid: int, index: int) -> int | None:
    """Field `index` (1-based, as in proc(5)) of /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[index - 3])


def start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks: with the pid, it identifies the process."""
    return _stat_field(pid, 22)


def _become_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1) through `_ctypes`, as `ctypes.CDLL(None).prctl` does
    it: a C function returning int, looked up in the running program."""
    try:
        # typeshed describes these through ctypes' own classes; the runtime takes these.
        class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]  # ctypes.c_int
            _type_ = "i"

        class CFunction(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL
            _restype_ = CInt

        class Program:  # what CFuncPtr((name, library)) reads: the dlopen handle
            _handle = _ctypes.dlopen(None)  # type: ignore[arg-type]

        prctl = CFunction(("prctl", Program()))  # type: ignore[arg-type]
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError, TypeError):
        pass  # without it, the process group kill still catches most leftovers


def _copy_window_size(src: int, dst: int) -> None:
    """Give the job's terminal the pane's size, so progress bars fit."""
    try:
        if os.isatty(src):
            size = fcntl.ioctl(src, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
            fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def _write_durably(path: str, data: dict[str, Any]) -> None:
    """Write-temp, fsync, rename; on a full disk, as soon as there is room again: the daemon
    sees the wrapper alive meanwhile, and the record is the one thing that must not be lost."""
    _until_there_is_room(lambda: _write_once(path, data))


def _until_there_is_room(write: Callable[[], None]) -> None:
    delay = 0.1
    while True:
        try:
            return write()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
        time.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_DELAY)


def _json_object(data: dict[str, int | float | bool | None]) -> str:
    """A flat record as JSON, without importing json."""

    def value(v: int | float | bool | None) -> str:
        if v is None or isinstance(v, bool):
            return {None: "null", True: "true", False: "false"}[v]
        return repr(v)

    return "{" + ", ".join(f'"{k}": {value(v)}' for k, v in data.items()) + "}"


def _write_once(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    try:
        os.unlink(tmp)  # a stale one (or a link planted there): never written through
    except FileNotFoundError:
        pass
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        _write_all(fd, _json_object(data).encode())
        os.fsync(fd)
    except OSError:
        os.unlink(tmp)  # a half-written record is never renamed into place
        raise
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def run(jobdir: str) -> None:
    status = main(jobdir)
    # The exit record is durable; skip interpreter teardown so the daemon hears sooner.
    sys.stdout.flush()
    os._exit(status)


if __name__ == "__main__":
    run(sys.argv[1])
