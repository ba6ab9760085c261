"""A fault-injecting HTTP proxy for the function tests, in front of moto or a GitHub stand-in
(pointed at through AWS_ENDPOINT_URL / GITHUB_API_URL). Each request is named by its operation:
`CodeBuild.StartBuildBatch`, `SecretsManager.GetSecretValue` (the X-Amz-Target of AWS's JSON
protocols), `S3.PutObject /bucket/key`, `S3.GetObject /bucket/key`, … (S3's method, query and
path), or `GET /repos/…` for anything else. A rule fails, throttles, delays or drops the operations it matches, for a number
of calls or until it is cleared; everything else is forwarded unchanged.

    proxy = FaultProxy("http://127.0.0.1:5000")
    proxy.add(Rule("CodeBuild.StartBuildBatch", status=400, aws_error="ThrottlingException"))
    ...; proxy.clear()
"""

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Rule:
    """Matches operations by regular expression (searched in the operation's name)."""
    operation: str
    status: int = 503
    # An AWS error code: the body and headers AWS answers with for it (JSON or S3's XML).
    aws_error: str | None = None
    body: str | None = None
    # Seconds to wait before answering (or forwarding, with `status` 0).
    delay: float = 0.0
    # Close the connection without an answer (a service that is unreachable).
    drop: bool = False
    # How many calls it applies to; None: until cleared.
    times: int | None = None
    hits: int = field(default=0)

    def matches(self, operation: str) -> bool:
        return re.search(self.operation, operation) is not None and (self.times is None or self.hits < self.times)


def operation_of(method: str, path: str, headers) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        service, _, op = target.partition(".")
        service = {"CodeBuild_20161006": "CodeBuild", "secretsmanager": "SecretsManager",
                   "Logs_20140328": "Logs"}.get(service, service)
        return f"{service}.{op}"
    auth = headers.get("Authorization", "")
    if "/s3/aws4_request" in auth:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
        if method == "GET" and ("list-type" in query or "versions" in query):
            return "S3.ListObjects"
        name = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject",
                "DELETE": "DeleteObject", "POST": "DeleteObjects"}.get(method, method)
        return f"S3.{name} {urllib.parse.unquote(urllib.parse.urlsplit(path).path)}"
    return f"{method} {urllib.parse.urlsplit(path).path}"


class FaultProxy:
    def __init__(self, target: str):
        self.target = urllib.parse.urlsplit(target)
        self.rules: list[Rule] = []
        self.seen: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                try:
                    self.handle_request()
                except (BrokenPipeError, ConnectionResetError):
                    # The caller gave up waiting (a delayed answer): nothing to answer.
                    self.close_connection = True

            def handle_request(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                operation = operation_of(self.command, self.path, self.headers)
                rule = proxy.rule_for(operation)
                if rule is not None:
                    time.sleep(rule.delay)
                    if rule.drop:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if rule.status:
                        self.answer_fault(rule)
                        return
                self.forward(body)

            def answer_fault(self, rule: Rule):
                headers = {}
                if rule.aws_error and "S3" in rule.operation:
                    data = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{rule.aws_error}</Code>"
                            f"<Message>injected</Message></Error>").encode()
                    headers["Content-Type"] = "application/xml"
                elif rule.aws_error:
                    data = json.dumps({"__type": rule.aws_error, "message": "injected"}).encode()
                    headers["Content-Type"] = "application/x-amz-json-1.1"
                    headers["x-amzn-ErrorType"] = rule.aws_error
                else:
                    data = (rule.body or json.dumps({"message": "injected"})).encode()
                    headers["Content-Type"] = "application/json"
                self.send_response(rule.status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def forward(self, body: bytes):
                conn = http.client.HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def rule_for(self, operation: str) -> Rule | None:
        with self.lock:
            self.seen.append(operation)
            for rule in self.rules:
                if rule.matches(operation):
                    rule.hits += 1
                    return rule
        return None

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
