"""The API token never follows a download's redirect to another host (issue 19, security).

Dataverse answers `GET /api/access/datafile/{id}` with a redirect to its store (S3 and the
like sign the URL instead). httpx forwards every header but Authorization to a redirect's
host; the client must drop `X-Dataverse-key` there, and keep it on the server itself."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lineage.dataverse import DataverseClient, RetryPolicy

TOKEN = "tok-redirect-SECRET-5f1e"


class Recorder(BaseHTTPRequestHandler):
    """A server that logs each request's headers and answers from `routes`."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.seen.append((self.path, dict(self.headers)))
        status, headers, body = self.server.routes.get(self.path.split("?")[0], (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def servers():
    started = []
    for _ in range(2):
        srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        srv.seen, srv.routes = [], {}
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
    yield started
    for srv in started:
        srv.shutdown()
        srv.server_close()


def test_token_is_dropped_on_a_redirect_to_another_host(servers):
    dataverse, store = servers
    store_url = f"http://localhost:{store.server_address[1]}/bucket/obj?sig=abc"  # other host
    dataverse.routes["/api/access/datafile/7"] = (303, {"Location": store_url}, b"")
    store.routes["/bucket/obj"] = (200, {}, b"payload")
    client = DataverseClient(f"http://127.0.0.1:{dataverse.server_address[1]}", TOKEN)
    assert client.download_file(7) == b"payload"
    (_, to_dataverse), (_, to_store) = dataverse.seen[0], store.seen[0]
    assert to_dataverse.get("X-Dataverse-key") == TOKEN  # the server itself gets it
    assert "X-Dataverse-key" not in to_store and TOKEN not in str(to_store)


def test_token_is_kept_on_a_redirect_within_the_server(servers):
    dataverse, _ = servers
    dataverse.routes["/api/access/datafile/8"] = (302, {"Location": "/files/8"}, b"")
    dataverse.routes["/files/8"] = (200, {}, b"same host")
    client = DataverseClient(f"http://127.0.0.1:{dataverse.server_address[1]}", TOKEN)
    assert client.download_file(8) == b"same host"
    assert [h.get("X-Dataverse-key") for _, h in dataverse.seen] == [TOKEN, TOKEN]


def test_dataset_zip_redirect_drops_the_token_too(servers):
    dataverse, store = servers
    store_url = f"http://localhost:{store.server_address[1]}/zip"
    dataverse.routes["/api/access/dataset/:persistentId/"] = (302, {"Location": store_url}, b"")
    store.routes["/zip"] = (200, {}, b"PK")
    client = DataverseClient(
        f"http://127.0.0.1:{dataverse.server_address[1]}", TOKEN, retry=RetryPolicy(attempts=1)
    )
    assert client.download_dataset_zip("doi:10.5072/FK2/X") == b"PK"
    assert "X-Dataverse-key" not in store.seen[0][1]
