"""Real local targets for probe tests: HTTP(S) servers, raw TCP servers,
certificates of known expiry, a tiny DNS server, a fake Kubernetes API."""

from __future__ import annotations

import datetime
import json
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Reply:
    """A route's answer when a (status, content type, body, delay) tuple is not enough:
    repeated header fields, 1xx interim responses before the final one, a chunked
    body with trailer fields, or a Content-Length that lies."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    interim: list[tuple[int, list[tuple[str, str]]]] = field(default_factory=list)
    chunks: list[bytes] | None = None  # set: Transfer-Encoding: chunked with these chunks
    trailers: list[tuple[str, str]] = field(default_factory=list)


def redirect(location: str, status: int = 302) -> Reply:
    return Reply(status, [("Location", location)], b"moved")


class Routes(BaseHTTPRequestHandler):
    """GET path → (status, content type, body, delay seconds) or a Reply, from server.routes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        # Route callables read the body too (the runbook actions' fake Kubernetes API).
        self.body = self.rfile.read(length) if length else b""
        self.server.bodies.append(self.body)
        self.server.requests.append((self.command, self.path, self.headers))  # case-insensitive
        route = self.server.routes.get(self.path.split("?")[0])
        if callable(route):
            route = route(self)
        if route is None:
            route = (404, "text/plain", b"not found", 0)
        if isinstance(route, Reply):
            self._reply(route)
            return
        status, content_type, body, delay = route
        if delay:
            time.sleep(delay)
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reply(self, reply: Reply) -> None:
        for status, headers in reply.interim:
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        names = {name.lower() for name, _ in reply.headers}
        if reply.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
        elif "content-length" not in names:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.chunks is None:
            self.wfile.write(reply.body)
            return
        for chunk in reply.chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        trailer = "".join(f"{name}: {value}\r\n" for name, value in reply.trailers)
        self.wfile.write(b"0\r\n" + trailer.encode("latin-1") + b"\r\n")

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = _answer


class HttpTarget:
    def __init__(self, routes: dict, context: ssl.SSLContext | None = None):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Routes)
        self.server.daemon_threads = True
        self.server.routes = routes
        self.server.handle_error = lambda *args: None  # a probe that hung up early is not a test failure
        self.server.requests = []
        self.server.bodies = []
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.scheme = "https" if context else "http"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RawTarget:
    """A TCP server that answers every connection with fixed bytes, then closes."""

    def __init__(self, payload: bytes, delay: float = 0):
        payload_, delay_ = payload, delay

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                time.sleep(delay_)
                try:
                    self.request.recv(4096)
                    self.request.sendall(payload_)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CertificateAuthority:
    """A test CA that issues leaf certificates of a chosen expiry and name."""

    def __init__(self, folder: Path, name: str = "Ops Console Test CA"):
        self.folder = folder
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = folder / f"ca-{id(self)}.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, *, days: float, hostnames=("localhost",), ips=("127.0.0.1",)) -> ssl.SSLContext:
        """A server context whose certificate expires in `days` days."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        sans = [x509.DNSName(h) for h in hostnames] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        not_after = now + datetime.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0] if hostnames else "x")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(min(now - datetime.timedelta(days=30), not_after - datetime.timedelta(days=1)))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = self.folder / f"leaf-{x509.random_serial_number()}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.last_not_after = not_after
        return context


def json_route(document, status: int = 200, delay: float = 0):
    return (status, "application/json", json.dumps(document), delay)
