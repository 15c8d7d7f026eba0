"""The loopback servers the back-end tests start (``tests/servers.py``): private, secret-free, stopped."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
import yaml
from lsst.utils.db_auth import DbAuth

from .servers import MotoS3Server, PostgresServer, ServerUnavailableError


def command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return lines


def is_running(pid: int) -> bool:
    """Return whether a process runs; a zombie waiting for its parent to reap it does not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def test_postgres_credentials_stay_out_of_command_lines(postgres_server: PostgresServer) -> None:
    password = postgres_server._password  # noqa: SLF001 - the secret itself, to look for it
    assert not any(password in line for line in command_lines())
    auth_file = postgres_server.db_auth_path
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
    url = postgres_server.url("anything")
    assert password not in url
    # daf_butler's DbAuth finds the password for any database of the cluster from the file alone.
    entries = yaml.safe_load(auth_file.read_text())
    assert (
        DbAuth(str(auth_file)).getAuth(
            "postgresql", postgres_server.user, "127.0.0.1", postgres_server.port, "x"
        )[1]
        == entries[0]["password"]
    )


def test_servers_listen_on_loopback_only(postgres_server: PostgresServer, s3_server: MotoS3Server) -> None:
    for port in (postgres_server.port, s3_server.port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    settings = (postgres_server.datadir / "postmaster.opts").read_text()
    assert "listen_addresses=127.0.0.1" in settings
    assert s3_server.endpoint_url.startswith("http://127.0.0.1:")


def test_stop_leaves_nothing_running() -> None:
    try:
        server = PostgresServer().start()
    except ServerUnavailableError as err:
        pytest.skip(str(err))
    pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
    workdir = server.datadir.parent
    server.stop()
    server.stop()  # twice is harmless
    assert not workdir.exists()
    assert not is_running(pid)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass


def test_slowed_s3_server_answers_late_and_at_its_bandwidth() -> None:
    """The benchmarks' object store: 50 ms before each answer, bodies at 2 MB/s."""
    import time

    import boto3

    try:
        server = MotoS3Server(latency=0.05, bandwidth=2e6).start()
    except ServerUnavailableError as err:
        pytest.skip(str(err))
    try:
        server.create_bucket("slow")
        client = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                              aws_access_key_id=server.env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=server.env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        client.put_object(Bucket="slow", Key="k", Body=b"x" * 1_000_000)
        start = time.perf_counter()
        client.head_object(Bucket="slow", Key="k")
        head = time.perf_counter() - start
        start = time.perf_counter()
        body = client.get_object(Bucket="slow", Key="k")["Body"].read()
        get = time.perf_counter() - start
    finally:
        server.stop()
    assert len(body) == 1_000_000
    assert 0.05 <= head < 1.0
    assert get >= 0.05 + 0.5  # the latency, and 1 MB at 2 MB/s
