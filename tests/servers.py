"""Private servers on the loopback interface for tests and benchmarks: PostgreSQL and S3 (moto).

Both classes start a real server as a child process in a temporary directory, on a free port of
127.0.0.1, and stop it (and remove the directory) in `stop`, which is safe to call twice.  Neither
puts a password on a command line: PostgreSQL's superuser password goes to ``initdb`` through a file
and to clients through a DbAuth file (``LSST_DB_AUTH``, mode 600); the S3 keys go through environment
variables.  When a binary is missing, `start` raises `ServerUnavailableError` with the reason and what to
install, which the fixtures turn into a skip.

    with PostgresServer() as pg, MotoS3Server() as s3:
        url = pg.create_database("registry")  # postgresql://spherex@127.0.0.1:PORT/registry
        s3.create_bucket("spherex")
        env = pg.env | s3.env                  # LSST_DB_AUTH, S3_ENDPOINT_URL, AWS_* keys
"""

from __future__ import annotations

__all__ = ["LoopbackServer", "MotoS3Server", "PostgresServer", "ServerUnavailableError", "free_port"]

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

import yaml

_START_TIMEOUT = 60.0


class LoopbackServer:
    """A server started by `start` and stopped by `stop`; as a context manager, for its block."""

    def start(self) -> Self:  # pragma: no cover - each server's own
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - each server's own
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServerUnavailableError(RuntimeError):
    """A server cannot be started here: a binary, a Python package or an account is missing."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now.

    Returns
    -------
    port : `int`
        The port; another process may take it before the caller binds it, so callers retry on failure.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find_postgres_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Debian installs them in ``/usr/lib/postgresql/<major>/bin``, which is not on ``PATH``.
    """
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    raise ServerUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH nor in /usr/lib/postgresql/*/bin; "
        "install them with `apt-get install postgresql` (Debian) to run the PostgreSQL registry tests"
    )


class PostgresServer(LoopbackServer):
    """A private PostgreSQL cluster (``initdb`` + ``pg_ctl``) listening only on 127.0.0.1.

    Parameters
    ----------
    user : `str`, optional
        Name of the database superuser the clients connect as.
    os_user : `str`, optional
        Operating-system account that runs the server when this process is root (PostgreSQL refuses
        to run as root); Debian's package creates ``postgres``.  Ignored when not root.

    Notes
    -----
    The cluster trades durability for speed (``fsync=off``): it is for tests and benchmarks only.
    Each repository should get its own database (`create_database`), which has the ``btree_gist``
    extension the Butler registry needs.
    """

    def __init__(self, user: str = "spherex", os_user: str = "postgres") -> None:
        self.user = user
        self.host = "127.0.0.1"
        self.port = 0
        self._password = secrets.token_urlsafe(24)
        self._os_user = os_user if os.geteuid() == 0 else None
        self._workdir: Path | None = None
        self._started = False

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (`pathlib.Path`)."""
        assert self._workdir is not None, "server not started"
        return self._workdir / "data"

    @property
    def db_auth_path(self) -> Path:
        """DbAuth file with this cluster's credentials, mode 600 (`pathlib.Path`)."""
        assert self._workdir is not None, "server not started"
        return self._workdir / "db-auth.yaml"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that let Butler clients log in (`dict` [`str`, `str`])."""
        return {"LSST_DB_AUTH": str(self.db_auth_path)}

    def url(self, database: str) -> str:
        """Return the connection URL of a database, without password (`str`)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def start(self) -> Self:
        """Create the cluster and start the server.

        Returns
        -------
        self : `PostgresServer`
            This server, started.

        Raises
        ------
        ServerUnavailableError
            Raised if the binaries, the ``psycopg`` driver or (as root) the account to run as is missing.
        RuntimeError
            Raised if ``initdb`` or ``pg_ctl`` fail; the message holds their output and the server log.
        """
        bindir = _find_postgres_bindir()
        try:
            import psycopg  # noqa: F401
        except ImportError as err:
            raise ServerUnavailableError(
                "the psycopg driver is not installed; pip install 'spherex-butler-poc[postgres]'"
            ) from err
        run_as = None
        if self._os_user is not None:
            try:
                run_as = pwd.getpwnam(self._os_user)
            except KeyError as err:
                raise ServerUnavailableError(
                    f"running as root and there is no {self._os_user!r} account to run PostgreSQL as "
                    "(PostgreSQL refuses to run as root); Debian's postgresql package creates it"
                ) from err
        # As root the server runs as another account, which must reach its directory: TMPDIR may be
        # under /root, so use /tmp then.
        self._workdir = Path(
            tempfile.mkdtemp(prefix="spherex-pg-", dir="/tmp" if run_as is not None else None)
        )
        try:
            pwfile = self._workdir / "pwfile"
            pwfile.write_text(self._password + "\n")
            pwfile.chmod(0o600)
            if run_as is not None:
                for path in (self._workdir, pwfile):
                    os.chown(path, run_as.pw_uid, run_as.pw_gid)
            self._run(
                bindir / "initdb",
                "-D", str(self.datadir), "-U", self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                "-E", "UTF8", "--locale=C", "--no-sync",
                run_as=run_as,
            )  # fmt: skip
            pwfile.unlink()
            self._start_server(bindir, run_as)
            self._write_db_auth()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self, bindir: Path, run_as: pwd.struct_passwd | None) -> None:
        options = " ".join(
            (
                f"-c listen_addresses={self.host}",
                # No Unix socket: /var/run/postgresql may not exist or be writable, and TCP is what
                # clients use.
                "-c unix_socket_directories=''",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c max_connections=100 -c shared_buffers=128MB",
            )
        )
        log = self._workdir / "server.log"
        for _attempt in range(5):
            self.port = free_port()
            result = self._run(
                bindir / "pg_ctl",
                "-D", str(self.datadir), "-l", str(log), "-w", "-t", str(int(_START_TIMEOUT)),
                "-o", f"{options} -c port={self.port}", "start",
                run_as=run_as, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                self._started = True
                self._bindir, self._run_as = bindir, run_as
                return
            text = log.read_text() if log.exists() else ""
            if "could not bind" not in text and "Address already in use" not in text:
                break
        raise RuntimeError(
            f"pg_ctl could not start PostgreSQL in {self.datadir}:\n{result.stdout}{result.stderr}\n"
            f"server log:\n{log.read_text() if log.exists() else '(none)'}"
        )

    def _write_db_auth(self) -> None:
        # One entry covers every database of this cluster.  Only the test process reads it (DbAuth
        # refuses a file that others can read).
        entries = [{"url": f"postgresql://{self.user}@{self.host}:{self.port}", "password": self._password}]
        self.db_auth_path.touch(mode=0o600)
        self.db_auth_path.chmod(0o600)
        self.db_auth_path.write_text(yaml.safe_dump(entries))

    def _run(
        self, *args: str | Path, run_as: pwd.struct_passwd | None, check: bool = True
    ) -> subprocess.CompletedProcess:
        kwargs = {}
        if run_as is not None:
            kwargs = {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
        env["LANG"] = "C"
        result = subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            cwd=self._workdir,
            env=env,
            timeout=_START_TIMEOUT + 30,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def connect(self, database: str = "postgres"):
        """Open an autocommit ``psycopg`` connection to a database of this cluster as the superuser.

        Parameters
        ----------
        database : `str`, optional
            Database name.

        Returns
        -------
        connection : `psycopg.Connection`
            The connection; the caller closes it.
        """
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self._password, dbname=database,
            autocommit=True, connect_timeout=10,
        )  # fmt: skip

    def create_database(self, name: str | None = None) -> str:
        """Create a database with the ``btree_gist`` extension the Butler registry needs.

        Parameters
        ----------
        name : `str`, optional
            Database name; a new unique name if `None`.

        Returns
        -------
        url : `str`
            Its connection URL, without password (the DbAuth file supplies it).
        """
        name = name or f"registry_{secrets.token_hex(4)}"
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        with self.connect(name) as connection:
            connection.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory; safe to call more than once."""
        if self._started:
            self._started = False
            result = self._run(
                self._bindir / "pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop",
                run_as=self._run_as, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                # Make sure nothing keeps running: the postmaster's pid is the first line of its pid file.
                with contextlib.suppress(OSError, ValueError):
                    pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, 9)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class MotoS3Server(LoopbackServer):
    """An S3 endpoint on 127.0.0.1: ``moto_server`` (``pip install 'moto[server]'``) as a child process.

    Its request log (one line per HTTP request) is kept in a file, see `request_log`.

    Parameters
    ----------
    latency : `float`, optional
        Seconds each request waits before it is answered (a remote object store's round trip).
    bandwidth : `float`, optional
        Bytes per second at most of a response body.  With either, the server is `tests.slow_moto`.
    """

    def __init__(self, latency: float = 0.0, bandwidth: float | None = None) -> None:
        self.latency, self.bandwidth = latency, bandwidth
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._log_path: Path | None = None
        # moto accepts any keys; real ones would come from the same variables or ~/.aws/credentials.
        self._access_key = "spherex-test-" + secrets.token_hex(4)
        self._secret_key = secrets.token_urlsafe(24)

    @property
    def endpoint_url(self) -> str:
        """The endpoint, for ``S3_ENDPOINT_URL`` (`str`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point lsst-resources and boto3 here (`dict` [`str`, `str`])."""
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self._access_key,
            "AWS_SECRET_ACCESS_KEY": self._secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            # Keep a developer's own AWS configuration out of the tests.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def start(self) -> Self:
        """Start ``moto_server`` and wait until it answers.

        Returns
        -------
        self : `MotoS3Server`
            This server, started.

        Raises
        ------
        ServerUnavailableError
            Raised if ``moto_server`` or ``boto3`` is not installed.
        RuntimeError
            Raised if the server does not answer within a minute; the message holds its log.
        """
        candidate = Path(sys.executable).parent / "moto_server"
        binary = str(candidate) if candidate.exists() else shutil.which("moto_server")
        if binary is None:
            raise ServerUnavailableError(
                "moto_server is not installed; pip install 'spherex-butler-poc[test]' (moto[server]) to run "
                "the S3 datastore tests"
            )
        try:
            import boto3  # noqa: F401
        except ImportError as err:
            raise ServerUnavailableError(
                "boto3 is not installed; pip install 'spherex-butler-poc[s3]'"
            ) from err
        self._workdir = Path(tempfile.mkdtemp(prefix="spherex-moto-"))
        self._log_path = self._workdir / "moto.log"
        try:
            for _attempt in range(5):
                self.port = free_port()
                command = [binary, "-H", "127.0.0.1", "-p", str(self.port)]
                env = {**os.environ, **self.env}
                if self.latency or self.bandwidth:
                    command = [sys.executable, "-m", "tests.slow_moto", *command[1:]]
                    command += ["--latency", str(self.latency)]
                    command += ["--bandwidth", str(self.bandwidth)] if self.bandwidth else []
                    root = str(Path(__file__).resolve().parent.parent)
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
                with open(self._log_path, "ab") as log:
                    self._process = subprocess.Popen(
                        command,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=env,
                    )
                if self._wait_ready():
                    return self
                self._terminate()
            raise RuntimeError(f"moto_server did not start; its log:\n{self._log_path.read_text()}")
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers
            except OSError:
                time.sleep(0.1)
        return False

    def client(self):
        """Return a boto3 S3 client for this server (`botocore.client.BaseClient`)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            region_name="us-east-1",
        )

    def create_bucket(self, name: str) -> str:
        """Create a bucket.

        Parameters
        ----------
        name : `str`
            Bucket name.

        Returns
        -------
        uri : `str`
            ``s3://name/``.
        """
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}/"

    def request_log(self) -> list[str]:
        """Return the HTTP request lines logged so far (`list` [`str`]), e.g. ``"GET /b/k HTTP/1.1" 206``."""
        if self._log_path is None or not self._log_path.exists():
            return []
        return [line for line in self._log_path.read_text().splitlines() if '"' in line and "HTTP/" in line]

    def _terminate(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        self._terminate()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
