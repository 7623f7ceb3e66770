"""A SendMessageBatch endpoint that answers as SQS does, after SQS's latency, and counts what it was sent: where the
nightly dispatch of 10,000 clients sends its messages in the benchmark.

moto server is not fit to time this: it looks at every message already in a queue on each send (a cost that grows
with the queue, which SQS does not have), and even with the queue drained it takes ~100 ms of Python a call on this
machine's shared cores, five times SQS's latency. So the dispatch's own work and DynamoDB Local's index are real,
and SQS's side is this: the JSON protocol botocore speaks (X-Amz-Target AmazonSQS.SendMessageBatch), every entry
accepted with its MD5, after a fixed latency (bench/settings.py: SQS_LATENCY_MS), any number of calls at once.
"""

import hashlib
import json
import threading
import time
import uuid
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from local.stack.aws_engines import HOST
from xero_sync.schemas import SyncMessage

TARGET = "AmazonSQS.SendMessageBatch"


class SqsSink:
    def __init__(self, latency_ms: float) -> None:
        self.latency = latency_ms / 1000
        self.lock = threading.Lock()
        self.calls = 0
        self.clients: set[str] = set()  # every message must be a sync message, one per client
        self.duplicates = 0
        self._server: BaseWSGIServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_port}"

    def __enter__(self) -> "SqsSink":
        self._server = make_server(HOST, 0, self._app, threaded=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.headers.get("X-Amz-Target") != TARGET:
            response = Response(json.dumps({"__type": "InvalidAction"}), status=400)
            return response(environ, start_response)
        entries = json.loads(request.get_data())["Entries"]
        time.sleep(self.latency)
        clients = [SyncMessage.model_validate_json(e["MessageBody"]).client_id for e in entries]
        with self.lock:
            self.calls += 1
            self.duplicates += sum(1 for c in clients if c in self.clients)
            self.clients.update(clients)
        body = {
            "Successful": [
                {
                    "Id": e["Id"],
                    "MessageId": str(uuid.uuid4()),
                    "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest(),  # noqa: S324 - SQS's own
                }
                for e in entries
            ],
            "Failed": [],
        }
        response = Response(json.dumps(body), content_type="application/x-amz-json-1.0")
        return response(environ, start_response)
