"""A real OCI registry on loopback for the image tests: Debian's docker-registry (CNCF distribution 2.8).

    with running_registry(tmp_dir) as reg:                      # anonymous
        RegistryClient(reg.url)
    with running_registry(tmp_dir, users={"u": "p"}) as reg:    # htpasswd (bcrypt) basic auth
    with FaultProxy(reg.url) as proxy:                          # proxy.fail("PUT", "/manifests/", 500)

Each registry is its own process on a free port with its own storage directory; the context manager
stops it (terminate, then kill) whatever happens in the block, and the child also gets SIGKILL if the
test process dies (PR_SET_PDEATHSIG), so no registry outlives the tests. `make tools` installs the
binaries (docker-registry, skopeo, htpasswd); without them the tests skip, which fails under CI=true.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import http.server
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["EcrChunkAnswers", "FaultProxy", "RedirectingFront", "Registry", "TokenProxy", "require_tools", "running_registry", "skopeo"]

TOOLS = ("docker-registry", "skopeo", "htpasswd")


def require_tools() -> None:
    """Skip (a failure under CI=true) unless the image-test tools are installed."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run `make tools` (apt: docker-registry skopeo apache2-utils)")


@dataclass
class Registry:
    url: str
    host: str
    storage: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_registry(workdir: Path, users: dict[str, str] | None = None, storage: Path | None = None) -> Iterator[Registry]:
    """Start `docker-registry serve` on a free loopback port; stop it on exit (whatever happened)."""
    require_tools()
    workdir.mkdir(parents=True, exist_ok=True)
    storage = storage or workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    auth = ""
    if users:
        lines = [subprocess.run(["htpasswd", "-Bbn", user, password], check=True, capture_output=True,
                                text=True).stdout.strip() for user, password in users.items()]
        (workdir / "htpasswd").write_text("\n".join(lines) + "\n")
        auth = f"auth:\n  htpasswd:\n    realm: greenlight-test\n    path: {workdir / 'htpasswd'}\n"
    for _ in range(3):
        port = _free_port()
        config = workdir / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                          f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
                          f"http:\n  addr: 127.0.0.1:{port}\n  secret: greenlight-test\n{auth}")
        log = workdir / "registry.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=sink,
                                       stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        reg = Registry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", storage, process, log)
        try:
            if _wait_ready(reg):
                yield reg
                return
        finally:
            reg.stop()
    raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")


def _wait_ready(reg: Registry, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reg.process.poll() is not None:
            return False  # the port was taken, most likely; try another
        try:
            with urllib.request.urlopen(f"{reg.url}/v2/", timeout=1):
                return True
        except urllib.error.HTTPError as exc:
            return exc.code == 401  # up, and asking for credentials
        except OSError:
            time.sleep(0.02)
    return False


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run skopeo (an independent reader of what we pushed); fails the test with its stderr."""
    run = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"skopeo {' '.join(args)}: {run.stderr}"
    return run


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern
    status: int
    times: int | None  # None: every time


@dataclass
class FaultProxy:
    """A loopback HTTP proxy in front of a registry that answers chosen requests with an error instead."""

    upstream: str
    rules: list[_Rule] = field(default_factory=list)
    seen: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status answered)
    authorizations: list[str | None] = field(default_factory=list)  # the Authorization header of each request
    url: str = ""

    def fail(self, method: str, path_regex: str, status: int = 500, times: int | None = None) -> None:
        self.rules.append(_Rule(method, re.compile(path_regex), status, times))

    def _fault(self, method: str, path: str) -> int | None:
        for rule in self.rules:
            if rule.method == method and rule.pattern.search(path) and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                return rule.status
        return None

    def authorize(self, handler) -> bool:
        """Hook for subclasses: False answers the request itself (e.g. a 401 challenge)."""
        return True

    def rewrite(self, method: str, path: str, status: int, headers: dict) -> tuple[int, dict]:
        """Hook for subclasses: the status and headers the proxy answers with instead of the registry's."""
        return status, headers

    def __enter__(self) -> FaultProxy:
        proxy = self
        upstream = urllib.parse.urlsplit(self.upstream).netloc

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.authorizations.append(self.headers.get("Authorization"))
                if not proxy.authorize(self):
                    return
                status = proxy._fault(self.command, self.path)
                if status is not None:
                    data = json.dumps({"errors": [{"code": "INJECTED", "message": f"injected {status}"}]}).encode()
                    self._answer(status, {"Content-Type": "application/json"}, data)
                    return
                conn = http.client.HTTPConnection(upstream, timeout=30)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in ("content-length", "connection", "authorization"):
                            conn.putheader(name, value)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    resp = conn.getresponse()
                    data = b"" if self.command == "HEAD" else resp.read()
                    headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("connection", "transfer-encoding")}
                    status, headers = proxy.rewrite(self.command, self.path, resp.status, headers)
                    self._answer(status, headers, data, head_length=resp.getheader("Content-Length"))
                except OSError:
                    self._answer(502, {"Content-Type": "text/plain"}, b"upstream unreachable")
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict, data: bytes, head_length: str | None = None) -> None:
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                length = head_length if self.command == "HEAD" and head_length else str(len(data))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@dataclass
class TokenProxy(FaultProxy):
    """A registry front that wants Bearer tokens, and serves them at /token to a user with a password."""

    user: str = "greenlight"
    password: str = "token-secret"
    issued: list[str] = field(default_factory=list)

    def authorize(self, handler) -> bool:
        import base64

        if handler.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if handler.headers.get("Authorization") != expected:
                handler._answer(401, {"WWW-Authenticate": 'Basic realm="token"'}, b"")
                return False
            scope = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query).get("scope", [""])[0]
            token = f"t{len(self.issued)}-{scope}"
            self.issued.append(token)
            handler._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode())
            return False
        token = str(handler.headers.get("Authorization", "")).removeprefix("Bearer ")
        if handler.path.rstrip("/") != "/v2" and token not in self.issued:
            repo = handler.path.split("/")[2] if handler.path.count("/") > 2 else ""
            challenge = (f'Bearer realm="{self.url}/token",service="greenlight-test",'
                         f'scope="repository:{repo}:pull,push"')
            handler._answer(401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                            b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return False
        return True


@dataclass
class RedirectingFront(FaultProxy):
    """ECR's shape: Basic auth on the registry API, blob GET/HEAD redirected (307) to storage elsewhere."""

    storage_url: str = ""
    user: str = "AWS"
    password: str = "ecr-password"

    def authorize(self, handler) -> bool:
        import base64

        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            handler._answer(401, {"WWW-Authenticate": 'Basic realm="front",service="ecr.amazonaws.com"'}, b"")
            return False
        if handler.command in ("GET", "HEAD") and re.search(r"/blobs/sha256:", handler.path):
            conn = http.client.HTTPConnection(urllib.parse.urlsplit(self.upstream).netloc, timeout=30)
            try:
                conn.request("HEAD", handler.path)
                present = conn.getresponse().status == 200
            finally:
                conn.close()
            if present:  # a missing blob is a 404 from the registry itself, as on ECR
                handler._answer(307, {"Location": f"{self.storage_url}{handler.path}?X-Signature=presigned"}, b"")
                return False
        return True


@dataclass
class EcrChunkAnswers(FaultProxy):
    """A registry front that answers chunk uploads as ECR is reported to (aws/containers-roadmap#2831): each
    PATCH of an upload with 201 instead of 202 and a Range that does not advance (always the first chunk's)."""

    patches: list[tuple[int, str]] = field(default_factory=list)  # (status answered, Range answered)

    def rewrite(self, method: str, path: str, status: int, headers: dict) -> tuple[int, dict]:
        if method == "PATCH" and "/blobs/uploads/" in path and status == 202:
            first = next((r for _, r in self.patches), headers.get("Range", "0-0"))
            headers = {**headers, "Range": first}
            self.patches.append((201, first))
            return 201, headers
        return status, headers
