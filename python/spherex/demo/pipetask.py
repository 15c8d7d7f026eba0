"""Run the real ``pipetask`` for the demo: its log to a file, progress and failures in one line each."""

from __future__ import annotations

__all__ = ["PipetaskError", "QuantumProgress", "failure_line", "run_pipetask"]

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PROGRESS = re.compile(
    r"Executed (?P<done>\d+) quanta successfully, (?P<failed>\d+) failed and (?P<remain>\d+) remain "
    r"out of total (?P<total>\d+) quanta"
)
"""pipe_base's ``mp_graph_executor`` logs this at INFO after every quantum (``-j 1`` and ``-j N``)."""

_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?(?P<type>\w+(?:Error|Exception)): (?P<message>.+)$")


class PipetaskError(RuntimeError):
    """``pipetask`` exited non-zero; the message is one line naming the cause and the log file."""


class QuantumProgress:
    """Show "quanta done / total" as pipetask reports them.

    Parameters
    ----------
    echo : `~collections.abc.Callable`
        Where the progress lines go.
    live : `bool`, optional
        Rewrite one line in place (a terminal).  Otherwise (a log file, a test) print a new line for
        the first quantum, at each further quarter of the graph, at the end, and whenever ``interval``
        seconds have passed without one.
    interval : `float`, optional
        Longest silence, in seconds, when not ``live``.
    """

    def __init__(self, echo: Callable[..., None], live: bool = False, interval: float = 10.0) -> None:
        self._echo = echo
        self._live = live
        self._interval = interval
        self._last_shown: float | None = None
        self._shown_quarter = 0
        self.done = self.failed = self.total = 0

    def line(self) -> str:
        """Return the current state as one line, e.g. ``    quanta: 12/24 done, 0 failed``."""
        return f"    quanta: {self.done}/{self.total} done, {self.failed} failed"

    def update(self, log_line: str) -> bool:
        """Read one line of pipetask's log; show progress if it reports some.

        Parameters
        ----------
        log_line : `str`
            A line of pipetask's output.

        Returns
        -------
        reported : `bool`
            `True` if the line was a progress report.
        """
        match = _PROGRESS.search(log_line)
        if match is None:
            return False
        self.done, self.failed, self.total = (int(match[k]) for k in ("done", "failed", "total"))
        finished = self.done + self.failed == self.total
        now = time.monotonic()
        if self._live:
            self._echo("\r" + self.line(), nl=False)
            if finished:
                self._echo("")
            return True
        quarter = 4 * (self.done + self.failed) // max(self.total, 1)
        if (
            self._last_shown is None
            or quarter > self._shown_quarter
            or now - self._last_shown >= self._interval
        ):
            self._echo(self.line())
            self._last_shown = now
            self._shown_quarter = quarter
        return True


def failure_line(output: str) -> str:
    """Return the one line of a failed ``pipetask``'s output that says what went wrong.

    Parameters
    ----------
    output : `str`
        Everything pipetask printed.

    Returns
    -------
    line : `str`
        The last exception message (``MissingCollectionError: No collection with name 'x' found.``),
        else the last ``ERROR`` log line, else the last line.
    """
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        match = _EXCEPTION.match(line)
        if match:
            return f"{match['type']}: {match['message']}"
    for line in reversed(lines):
        if " ERROR" in line or line.startswith("ERROR"):
            return line
    return lines[-1] if lines else "no output"


def run_pipetask(
    args: list[str],
    log_path: Path,
    echo: Callable[..., None] = print,
    progress: QuantumProgress | None = None,
) -> None:
    """Run ``pipetask`` (the real command, from this Python's environment) and show what it ran.

    Parameters
    ----------
    args : `list` [ `str` ]
        Arguments after ``pipetask``.
    log_path : `pathlib.Path`
        File that receives pipetask's whole output.
    echo : `~collections.abc.Callable`, optional
        Where the command line goes.
    progress : `QuantumProgress`, optional
        Receives every output line while pipetask runs.

    Raises
    ------
    PipetaskError
        Raised if pipetask exits non-zero: one line with its error message and the log file.
    """
    bindir = Path(sys.executable).parent
    exe = bindir / "pipetask"
    command = [str(exe) if exe.exists() else "pipetask", "--log-level", "INFO", *args]
    echo("    $ pipetask " + " ".join(args))
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    output: list[str] = []
    with (
        open(log_path, "w") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            output.append(line)
            if progress is not None:
                progress.update(line)
    if process.returncode != 0:
        raise PipetaskError(
            f"pipetask {args[0]} failed: {failure_line(''.join(output))} (full log: {log_path})"
        )
