"""A gRPC-aware proxy in front of several `purse serve` processes: Debian's nginx, run in
the foreground from tests/e2e/nginx-grpc.conf on a free loopback port, balancing calls
round-robin over the upstream targets it is given (host:port), stopped by SIGTERM."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from support import wait_until_serving

from purse.store.embedded import free_port

template_path = Path(__file__).with_name("nginx-grpc.conf")
proxy_start_seconds_max = 10.0
proxy_stop_seconds_max = 10.0
# How long nginx leaves an upstream that refused a connection before trying it again.
upstream_rest_seconds = 1


class GrpcProxy:
    """nginx on 127.0.0.1:`port` passing gRPC to `upstreams`."""

    def __init__(self, upstreams: Sequence[str], data_dir: Path) -> None:
        executable = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
        assert executable is not None, "nginx is needed: make proxy-tools"
        self.executable = executable
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.prefix = data_dir / f"proxy-{self.port}"
        servers = "\n".join(
            f"        server {upstream} max_fails=1 fail_timeout={upstream_rest_seconds}s;"
            for upstream in upstreams
        )
        self.config_path = self.prefix / "nginx.conf"
        self.config = (
            template_path.read_text()
            .replace("@PREFIX@", str(self.prefix))
            .replace("@PORT@", str(self.port))
            .replace("@SERVERS@", servers)
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GrpcProxy:
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        with (self.prefix / "stderr.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "-p",
                    str(self.prefix),
                    "-e",
                    "stderr",
                    "-c",
                    str(self.config_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        # Passing a health check through, answered by an upstream.
        wait_until_serving(self.target, self.process, proxy_start_seconds_max, self.log)
        return self

    def log(self) -> str:
        logs = (self.prefix / "stderr.log", self.prefix / "error.log")
        return "\n".join(path.read_text(errors="replace") for path in logs if path.exists())

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(proxy_stop_seconds_max)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(proxy_stop_seconds_max)
        finally:
            self.process = None
