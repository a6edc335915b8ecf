"""A thin, retrying wrapper over pyDataverse's NativeApi and DataAccessApi.

pyDataverse sends the requests; this module adds what a long unattended publish needs:
- a per-request timeout (pyDataverse 0.3.5 passes `timeout=None`, so a hung server would
  block forever), set through the one per-request hook pyDataverse offers, its `auth`;
- retries (tenacity) with exponential backoff and jitter, or the server's Retry-After, on
  5xx, 429 and timeouts or dropped connections, around each public pyDataverse call;
- one error type per failure a user can act on, with a message naming the server, the action
  and what to do (401 token rejected, 403 permission, 404 collection/dataset missing);
- token hygiene: the token travels only in the `X-Dataverse-key` header, never to another host
  (downloads drop it on a redirect off the server); it is never put in
  a URL, and any message we raise is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import tenacity
from pyDataverse.api import DataAccessApi, NativeApi
from pyDataverse.exceptions import ApiAuthorizationError, OperationFailedError

__all__ = [
    "TOKEN_ENV",
    "DataverseAuthError",
    "DataverseClient",
    "DataverseError",
    "DataverseNotFoundError",
    "DataverseRequestError",
    "DataverseUnavailableError",
    "RetryPolicy",
    "TokenError",
    "resolve_token",
]

TOKEN_ENV = "DATAVERSE_API_TOKEN"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})

T = TypeVar("T")


class DataverseError(RuntimeError):
    """A Dataverse request failed; the message says what to do. Never contains the token."""


class DataverseAuthError(DataverseError):
    """HTTP 401 (token rejected) or 403 (token's user lacks permission)."""


class DataverseNotFoundError(DataverseError):
    """HTTP 404: collection, dataset or file unknown to the server."""


class DataverseUnavailableError(DataverseError):
    """5xx, 429, timeouts or dropped connections that outlasted every retry."""


class DataverseRequestError(DataverseError):
    """Any other refusal (400, 409, 413, ...): the server's message is included."""


class TokenError(DataverseError):
    """No API token could be found."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` in total per request, backoff doubling from `backoff` s."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 120.0  # seconds per request phase (connect, send a chunk, wait for reply)

    def wait(self, state: tenacity.RetryCallState) -> float:
        """tenacity's `wait`: the server's Retry-After (capped at `max_backoff`) if it sent
        one, else a random delay up to `backoff * 2**(attempt-1)` (at most `max_backoff`)."""
        err = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                return min(self.max_backoff, max(0.0, float(retry_after)))
        backoff = tenacity.wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)
        return backoff(state)


def resolve_token(source: str | Callable[[], str] | None = None) -> str:
    """The API token: `source` if it is a non-empty string, what `source()` returns if it is
    a callable (a lookup of the caller's, e.g. flows.dataverse_secret.dataverse_token), else
    $DATAVERSE_API_TOKEN; TokenError when none of them gives one."""
    if callable(source):
        source = source()
    if isinstance(source, str) and source.strip():
        return source.strip()
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    raise TokenError(
        f"No Dataverse API token: set {TOKEN_ENV} (Dataverse: your account menu > API Token)."
    )


class _DataverseAuth(httpx.Auth):
    """The `X-Dataverse-key` header and a per-request timeout, on every pyDataverse request.

    pyDataverse 0.3.5 sends its synchronous requests with `timeout=None`: a hung server would
    block forever. Its one public per-request hook is `auth`, any `httpx.Auth`. This one sets
    the header (as pyDataverse's ApiTokenAuth does, only when there is a token) and httpx's
    documented `timeout` request extension, which bounds each connect, write, read and pool
    wait of the request.
    """

    def __init__(self, token: str | None, timeout: float) -> None:
        self._token = token
        self._timeout = httpx.Timeout(timeout).as_dict()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token:
            request.headers["X-Dataverse-key"] = self._token
        request.extensions["timeout"] = self._timeout
        yield request

    def __repr__(self) -> str:  # never show the token
        return f"_DataverseAuth(token={'set' if self._token else 'none'})"


class _Transient(Exception):
    """An attempt that may succeed when repeated: 5xx, 429, timeout, dropped connection."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _server_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip().replace("\n", " ")
        return text[:200] or resp.reason_phrase
    if isinstance(body, dict) and body.get("message") is not None:
        msg = body["message"]
        return msg if isinstance(msg, str) else json.dumps(msg)
    return resp.reason_phrase


class DataverseClient:
    """One Dataverse installation, one token (or none, for public reads)."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(server, str) or not server.startswith(("http://", "https://")):
            raise DataverseError(
                f"--server {server!r} is not an http(s) URL; give the installation's base URL, "
                "e.g. https://dataverse.harvard.edu"
            )
        self.server = server.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._token = token or None
        self._sleep = sleep
        auth = _DataverseAuth(self._token, self.retry.timeout)
        self._auth = auth
        self.native = NativeApi(self.server, auth=auth)
        self.access = DataAccessApi(self.server, auth=auth)

    def close(self) -> None:
        """Nothing to release: pyDataverse opens one connection per request."""

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the token
        return f"DataverseClient({self.server!r}, token={'set' if self._token else 'none'})"

    # -- plumbing ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _raise(self, cls: type[DataverseError], text: str) -> None:
        raise cls(self._redact(text))

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a pyDataverse call without its deprecation warnings and stdout chatter."""
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="pyDataverse")
            return fn()

    def request(
        self,
        action: str,
        call: Callable[[], httpx.Response],
        *,
        what: str = "",
        recover: Callable[[], Any] | None = None,
    ) -> Any:
        """Send `call` with retries; return the response (or what `recover` found).

        `action` and `what` make the messages ("create a dataset in collection 'x'").
        `recover` runs before every retry of a non-idempotent request whose outcome is
        unknown (timeout, dropped connection, 5xx): if it finds that the first attempt did
        take effect it returns a non-None value, which is returned instead of retrying.
        Only transient failures are retried (tenacity); a refusal (401, 403, 404, other 4xx)
        raises at once.
        """
        policy = self.retry
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=policy.wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if recover is not None and attempt.retry_state.attempt_number > 1:
                        found = recover()
                        if found is not None:
                            return found
                    return self._attempt(action, call, what)
        except _Transient as err:
            self._raise(
                DataverseUnavailableError,
                f"Dataverse at {self.server} did not {action} after {policy.attempts} attempts "
                f"(last: {err.reason}). Nothing is lost: run the same command again later to "
                "resume.",
            )
        raise AssertionError("unreachable")

    def _attempt(self, action: str, call: Callable[[], httpx.Response], what: str) -> Any:
        """One try of `call`: the response if it succeeded, `_Transient` if it may succeed
        when repeated, a DataverseError if it never will."""
        try:
            resp = self._call(call)
        except ApiAuthorizationError as err:
            msg = str(err).split("MSG:", 1)[-1].strip()
            self._raise(DataverseAuthError, self._msg_401(action, msg))
        except OperationFailedError as err:  # pyDataverse's own 404 handling
            msg = str(err).split("MSG:", 1)[-1].strip()
            self._raise(DataverseNotFoundError, self._msg_404(action, what, msg))
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.retry.timeout:g} s") from None
        except httpx.TransportError as err:
            raise _Transient(f"connection failed ({type(err).__name__}: {err})") from None
        except ValueError as err:  # pyDataverse parsed a non-JSON error page
            self._raise(
                DataverseRequestError,
                f"{self.server} did not answer like a Dataverse server when asked to "
                f"{action} ({err}); check --server",
            )
        code = resp.status_code
        if code < 300:
            return resp
        msg = _server_message(resp)
        if code == 401:
            self._raise(DataverseAuthError, self._msg_401(action, msg))
        if code == 403 and self._token is None:
            self._raise(
                DataverseAuthError,
                f"Dataverse at {self.server} refused to {action} without an API token "
                f"(HTTP 403: {msg}); it is unpublished or restricted. Set {TOKEN_ENV}.",
            )
        if code == 403:
            self._raise(
                DataverseAuthError,
                f"Dataverse at {self.server} refused to {action} (HTTP 403: {msg}). "
                "The token is valid but its user lacks the permission: ask the "
                "collection's administrator for a Contributor or Curator role.",
            )
        if code == 404:
            self._raise(DataverseNotFoundError, self._msg_404(action, what, msg))
        if code not in RETRY_STATUS:
            self._raise(
                DataverseRequestError,
                f"Dataverse at {self.server} refused to {action} (HTTP {code}: {msg}).",
            )
        raise _Transient(f"HTTP {code}: {msg}", resp.headers.get("Retry-After"))

    def _msg_401(self, action: str, msg: str) -> str:
        if self._token is None:
            return (
                f"Dataverse at {self.server} requires an API token to {action} (HTTP 401: "
                f"{msg}); the dataset is probably unpublished. Set {TOKEN_ENV} to a token of "
                "a user who may see it."
            )
        return (
            f"Dataverse at {self.server} rejected the API token when asked to {action} "
            f"(HTTP 401: {msg}). Check {TOKEN_ENV} (or the Prefect Secret block that holds "
            "the token): it may be mistyped, expired, or from another installation."
        )

    def _msg_404(self, action: str, what: str, msg: str) -> str:
        thing = what or "the requested object"
        return (
            f"Dataverse at {self.server}: {thing} not found when asked to {action} "
            f"(HTTP 404: {msg}). Check the spelling and the --server URL."
        )

    def _data(self, resp: Any) -> Any:
        """The `data` of an OK envelope (or what a recovery probe returned as is)."""
        if not isinstance(resp, httpx.Response):
            return resp
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "data" not in body:
            self._raise(
                DataverseRequestError,
                f"{self.server} answered {resp.request.method} {resp.request.url.path} with "
                f"HTTP {resp.status_code} but not with Dataverse's JSON envelope; check --server "
                "(it should be the installation's base URL, without /api)",
            )
        return body["data"]

    # -- Native API ----------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return self._data(self.request("read its version", self.native.get_info_version))

    def create_dataset(
        self,
        collection: str,
        body: dict[str, Any],
        *,
        recover: Callable[[], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """POST /api/dataverses/{alias}/datasets; returns {"id", "persistentId"}."""
        return self._data(
            self.request(
                f"create a dataset in collection {collection!r}",
                lambda: self.native.create_dataset(collection, json.dumps(body)),
                what=f"collection {collection!r}",
                recover=recover,
            )
        )

    def get_dataset(self, pid: str) -> dict[str, Any]:
        """GET /api/datasets/:persistentId/?persistentId=...: the dataset with latestVersion."""
        return self._data(
            self.request(
                f"read dataset {pid}", lambda: self.native.get_dataset(pid), what=f"dataset {pid}"
            )
        )

    def collection_contents(self, collection: str) -> list[dict[str, Any]]:
        """GET /api/dataverses/{alias}/contents."""
        return self._data(
            self.request(
                f"list collection {collection!r}",
                lambda: self.native.get_dataverse_contents(collection),
                what=f"collection {collection!r}",
            )
        )

    def _post_file(self, url: str, path: Path, json_data: dict[str, Any]) -> httpx.Response:
        """Multipart `file` + `jsonData`, as pyDataverse's upload_datafile/replace_datafile
        send it, but closing the file (those leave it open until garbage collection)."""
        with open(path, "rb") as fh:
            return self.native.post_request(
                url, data={"jsonData": json.dumps(json_data)}, files={"file": (path.name, fh)}
            )

    def add_file(
        self,
        pid: str,
        path: Path,
        json_data: dict[str, Any],
        *,
        label: str,
        recover: Callable[[], list[dict[str, Any]] | None] | None = None,
    ) -> list[dict[str, Any]]:
        """POST /api/datasets/:persistentId/add (multipart `file` + `jsonData`)."""
        url = f"{self.native.base_url_api_native}/datasets/:persistentId/add?persistentId={pid}"
        resp = self.request(
            f"upload {label} to dataset {pid}",
            lambda: self._post_file(url, path, json_data),
            what=f"dataset {pid}",
            recover=recover,
        )
        data = self._data(resp)
        return data["files"] if isinstance(data, dict) else data

    def replace_file(
        self, file_id: int, path: Path, json_data: dict[str, Any], *, label: str
    ) -> list[dict[str, Any]]:
        """POST /api/files/{id}/replace: a new version of a file that is already published."""
        url = f"{self.native.base_url_api_native}/files/{file_id}/replace"
        resp = self.request(
            f"replace {label} (file id {file_id})",
            lambda: self._post_file(url, path, json_data),
            what=f"file id {file_id}",
        )
        return self._data(resp)["files"]

    def delete_file(self, file_id: int, *, label: str) -> None:
        """DELETE /api/files/{id}: drop a not-yet-published file from the draft."""
        url = f"{self.native.base_url_api_native}/files/{file_id}"
        self.request(
            f"delete {label} (file id {file_id}) from the draft",
            lambda: self.native.delete_request(url),
            what=f"file id {file_id}",
        )

    def edit_metadata(self, pid: str, fields: list[dict[str, Any]]) -> None:
        """PUT /api/datasets/:persistentId/editMetadata?replace=true."""
        self.request(
            f"update the metadata of dataset {pid}",
            lambda: self.native.edit_dataset_metadata(pid, {"fields": fields}, replace=True),
            what=f"dataset {pid}",
        )

    def publish(self, pid: str, release_type: str) -> httpx.Response:
        """POST /api/datasets/:persistentId/actions/:publish?type=major|minor."""
        return self.request(
            f"publish dataset {pid} as a {release_type} version",
            lambda: self.native.publish_dataset(pid, release_type=release_type),
            what=f"dataset {pid}",
        )

    # -- Data Access API -------------------------------------------------------------------------

    def _keeps_token(self, url: httpx.URL) -> bool:
        """Whether a request to `url` may carry the token: the server's own origin, or its
        host upgraded from http to https (default ports), as httpx decides for Authorization."""
        server = httpx.URL(self.server)
        if url.host != server.host:
            return False
        if (url.scheme, url.port) == (server.scheme, server.port):
            return True
        return (server.scheme, url.scheme) == ("http", "https") and (
            server.port in (None, 80) and url.port in (None, 443)
        )

    def _get_download(self, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        """GET a Data Access API URL, following redirects without leaking the token.

        Downloads are where Dataverse redirects (to S3 or another store's signed URL), and
        httpx forwards every header but `Authorization` to the redirect's host. This
        request goes through an `httpx.Client` of its own, whose request hook (public httpx
        `event_hooks`) removes `X-Dataverse-key` from any request to another host, the
        redirects included, so the token never leaves the server it was meant for."""

        def drop_foreign_key(request: httpx.Request) -> None:
            if not self._keeps_token(request.url):
                request.headers.pop("X-Dataverse-key", None)

        with httpx.Client(
            auth=self._auth,
            follow_redirects=True,
            timeout=self.retry.timeout,
            event_hooks={"request": [drop_foreign_key]},
            headers={"User-Agent": "pydataverse"},
        ) as client:
            return client.get(url, params=params)

    def download_file(self, file_id: int, *, original: bool = False, label: str = "") -> bytes:
        """GET /api/access/datafile/{id}[?format=original]: the file's bytes."""
        url = f"{self.access.base_url_api_data_access}/datafile/{int(file_id)}"
        params = {"format": "original"} if original else None
        resp = self.request(
            f"download {label or f'file id {file_id}'}",
            lambda: self._get_download(url, params),
            what=f"file id {file_id}",
        )
        return resp.content

    def download_dataset_zip(self, pid: str, *, original: bool = True) -> bytes:
        """GET /api/access/dataset/:persistentId/?persistentId=...: all files as one zip."""
        url = f"{self.access.base_url_api_data_access}/dataset/:persistentId/"
        params = {"persistentId": pid}
        if original:
            params["format"] = "original"
        resp = self.request(
            f"download dataset {pid} as a zip",
            lambda: self._get_download(url, params),
            what=f"dataset {pid}",
        )
        return resp.content
