"""Starts moto's server on 127.0.0.1 with what flavor-ci's tests need and moto lacks.

- CloudFormation custom resources: moto hands the Create event to its Lambda backend, which
  needs Docker. Here the event is forwarded to a real function behind `cargo lambda watch`
  (LAMBDA_FORWARD_URL), and moto's response endpoint is announced on 127.0.0.1, so the
  function's answer completes the stack.

Usage: python moto_launcher.py PORT
"""

import json
import os
import sys
import urllib.request


def main() -> None:
    port = sys.argv[1]
    os.environ["MOTO_PORT"] = port

    from moto import settings
    from moto.awslambda import models as lambda_models
    from moto.server import main as server_main

    settings.moto_server_host = lambda: "http://127.0.0.1"

    forward = os.environ.get("LAMBDA_FORWARD_URL")

    def invoke(self, body, request_headers, response_headers):
        if not forward:
            raise RuntimeError("LAMBDA_FORWARD_URL is not set; no function to invoke")
        data = body if isinstance(body, bytes) else str(body).encode()
        url = forward.format(name=self.function_name)
        req = urllib.request.Request(url, data=data, method="POST")
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read().decode()

    lambda_models.LambdaFunction.invoke = invoke
    server_main(["-H", "127.0.0.1", "-p", port])


if __name__ == "__main__":
    main()
