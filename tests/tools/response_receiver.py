"""A stand-in for CloudFormation's pre-signed response URL: records every PUT and answers with
200 or with what a test scripted for that path (a status code, or "drop" to cut the connection).

Run on its own, it prints each response it receives:
    python tests/tools/response_receiver.py 8787
"""

import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Stands in for CloudFormation's pre-signed response URL (an S3 object URL)."""

    def __init__(self, port: int = 0, echo: bool = False):
        self.requests: list[dict] = []
        self.script: dict[str, list] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PUT(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                with receiver.cond:
                    answers = receiver.script.get(path, [])
                    answer = answers.pop(0) if answers else 200
                    receiver.requests.append(
                        {
                            "path": path,
                            "query": self.path.split("?", 1)[1] if "?" in self.path else "",
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "raw": body,
                            "answer": answer,
                            "at": time.monotonic(),
                        }
                    )
                    receiver.cond.notify_all()
                if echo:
                    print(f"PUT {path} -> {answer}\n{body.decode(errors='replace')}", flush=True)
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def new_url(self, answers=None) -> tuple[str, str]:
        """A fresh response URL (with a signature-like query) and its path."""
        path = f"/cloudformation-response/{uuid.uuid4()}"
        if answers:
            with self.cond:
                self.script[path] = list(answers)
        secret = uuid.uuid4().hex
        return f"http://127.0.0.1:{self.port}{path}?X-Amz-Signature={secret}&X-Amz-Expires=7200", path

    def received(self, path: str) -> list[dict]:
        with self.cond:
            return [r for r in self.requests if r["path"] == path]

    def wait_for(self, path: str, timeout: float) -> list[dict]:
        """Waits until something arrived at `path`, or `timeout` seconds passed."""
        end = time.monotonic() + timeout
        with self.cond:
            while not any(r["path"] == path for r in self.requests):
                left = end - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
        return self.received(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    r = Receiver(int(sys.argv[1]) if len(sys.argv) > 1 else 8787, echo=True)
    print(f"receiving on http://127.0.0.1:{r.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        r.close()
