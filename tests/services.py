"""Services the tests and benches start themselves, on free local ports: a throw-away PostgreSQL
and an S3-compatible server (moto in server mode).

Debian's `postgresql` package (`make postgres` installs it) puts its programs under
/usr/lib/postgresql/<version>/bin. The cluster lives in a temp folder, trusts local
connections, listens on 127.0.0.1 only, and is stopped (immediately) on exit.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def postgres_bin() -> Path:
    """The folder with initdb and pg_ctl; a clear error naming the make target otherwise."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL not found: run `make postgres` (Debian's postgresql package)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres_user(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: drop to the `postgres` user when root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def local_postgres(database: str = "snowcoder") -> Iterator[str]:
    """A running PostgreSQL with one empty database; yields its URL."""
    bin_dir, port = postgres_bin(), free_port()
    with tempfile.TemporaryDirectory(prefix="snowcoder-pg-") as tmp:
        root = Path(tmp)
        data, sockets = root / "data", root / "sock"
        sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(sockets, "postgres")
        run = _as_postgres_user
        subprocess.run(
            run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]),
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
        subprocess.run(run([*ctl, "-o", options, "-w", "start"]), check=True, capture_output=True)
        try:
            subprocess.run(
                [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                 database],
                check=True,
                capture_output=True,
            )  # fmt: skip
            yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
        finally:
            subprocess.run(run([*ctl, "-m", "immediate", "stop"]), capture_output=True)


def postgres_instance_settings(template: Path, url: str) -> str:
    """The project's dagster.yaml template with its sqlite storage replaced by Postgres
    (through psycopg2, the driver dagster-postgres is written for: SQLAlchemy 2.1 maps a bare
    `postgresql://` URL to psycopg 3)."""
    import yaml

    url = url.replace("postgresql://", "postgresql+psycopg2://", 1)
    settings = yaml.safe_load(template.read_text())
    settings["storage"] = {"postgres": {"postgres_url": url}}
    return yaml.safe_dump(settings, sort_keys=False)


S3_TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "snowcoder-test",
    "AWS_SECRET_ACCESS_KEY": "not-a-secret",
}


@contextmanager
def local_s3(bucket: str = "snowcoder-data") -> Iterator[dict[str, str]]:
    """A moto S3 server on a free port with one empty bucket; yields the environment a client
    needs (endpoint, test credentials, region): set it and `s3://<bucket>/...` works."""
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        **S3_TEST_CREDENTIALS,
    }
    try:
        _wait_for_port(port, server)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])  # fmt: skip
        client.create_bucket(Bucket=bucket)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s:.0f} s")
