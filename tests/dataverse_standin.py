"""A local stand-in for a Dataverse installation: the Native and Data Access API subset A4NN uses.

Dataverse (a Java EE application with PostgreSQL and Solr) cannot run here, so tests and
offline demos talk to this small stdlib HTTP server instead. It follows Dataverse's documented
behaviour (Native API guide, Data Access API guide) closely enough that a client which works
against it should work against a real installation:

- paths under `/api` and `/api/v1`, datasets addressed by id or `:persistentId?persistentId=`;
- JSON envelopes `{"status": "OK", "data": ...}` and `{"status": "ERROR", "message": ...}`;
- `X-Dataverse-key` authentication: a wrong key is `401 Bad api key` on every endpoint, a
  guest may only read published versions, a user without permission gets 403;
- dataset creation validates the citation block (required title, author, contact e-mail,
  description, subject; controlled vocabularies; typeClass/multiple) and answers 201 with
  `{"id", "persistentId": "doi:10.5072/FK2/XXXXXX"}`;
- file upload (multipart `file` + `jsonData`) with `directoryLabel` sanitising, renaming of
  duplicate names (`x-1.json`), unpacking of uploaded zips, and ingest of CSV/TSV into `.tab`
  (unless `"tabIngest": false`), MD5 checksums of what was uploaded;
- drafts and versions: publish `type=major|minor` (1.0 first; a minor release is refused
  when files changed), replace (published files only) and delete of files, metadata edits;
- access API downloads per file (`?format=original` for ingested files) and per dataset (zip
  with MANIFEST.TXT).

Fault injection for tests: `DataverseStandin.inject(...)` makes matching requests answer an
HTTP error, drop the connection, hang past the client's timeout, or take effect and then
drop the connection (a lost response).

A test tool, not part of the product: it lives under tests/ and is never installed.
Run by hand from the repository root:
    python -m tests.dataverse_standin --port 8080 --token T [--collection a4nn]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import mimetypes
import random
import re
import string
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["DataverseStandin", "Fault", "User"]

GUEST = ":guest"
API_ENDPOINT_MISSING = (
    "API endpoint does not exist on this server. Please check your code for typos, or "
    "consult our API guide at http://guides.dataverse.org."
)
ACCESS_FORBIDDEN = (
    "Not authorized to access this object via this API endpoint. Please check your code for "
    "typos, or consult our API guide at http://guides.dataverse.org."
)

# --- the citation block, as Dataverse's citation.tsv defines the fields we accept --------------

_P, _C, _V = "primitive", "compound", "controlledVocabulary"
CITATION_FIELDS: dict[str, tuple[str, bool, str | None]] = {
    # typeName: (typeClass, multiple, parent)
    "title": (_P, False, None),
    "subtitle": (_P, False, None),
    "alternativeTitle": (_P, True, None),
    "alternativeURL": (_P, False, None),
    "otherId": (_C, True, None),
    "otherIdAgency": (_P, False, "otherId"),
    "otherIdValue": (_P, False, "otherId"),
    "author": (_C, True, None),
    "authorName": (_P, False, "author"),
    "authorAffiliation": (_P, False, "author"),
    "authorIdentifierScheme": (_V, False, "author"),
    "authorIdentifier": (_P, False, "author"),
    "datasetContact": (_C, True, None),
    "datasetContactName": (_P, False, "datasetContact"),
    "datasetContactAffiliation": (_P, False, "datasetContact"),
    "datasetContactEmail": (_P, False, "datasetContact"),
    "dsDescription": (_C, True, None),
    "dsDescriptionValue": (_P, False, "dsDescription"),
    "dsDescriptionDate": (_P, False, "dsDescription"),
    "subject": (_V, True, None),
    "keyword": (_C, True, None),
    "keywordValue": (_P, False, "keyword"),
    "keywordVocabulary": (_P, False, "keyword"),
    "keywordVocabularyURI": (_P, False, "keyword"),
    "publication": (_C, True, None),
    "publicationRelationType": (_V, False, "publication"),
    "publicationCitation": (_P, False, "publication"),
    "publicationIDType": (_V, False, "publication"),
    "publicationIDNumber": (_P, False, "publication"),
    "publicationURL": (_P, False, "publication"),
    "notesText": (_P, False, None),
    "language": (_V, True, None),
    "productionDate": (_P, False, None),
    "grantNumber": (_C, True, None),
    "grantNumberAgency": (_P, False, "grantNumber"),
    "grantNumberValue": (_P, False, "grantNumber"),
    "depositor": (_P, False, None),
    "dateOfDeposit": (_P, False, None),
    "kindOfData": (_P, True, None),
    "software": (_C, True, None),
    "softwareName": (_P, False, "software"),
    "softwareVersion": (_P, False, "software"),
    "relatedMaterial": (_P, True, None),
    "relatedDatasets": (_P, True, None),
    "otherReferences": (_P, True, None),
    "dataSources": (_P, True, None),
}
VOCABULARIES: dict[str, frozenset[str]] = {
    "subject": frozenset({
        "Agricultural Sciences", "Arts and Humanities", "Astronomy and Astrophysics",
        "Business and Management", "Chemistry", "Computer and Information Science",
        "Earth and Environmental Sciences", "Engineering", "Law", "Mathematical Sciences",
        "Medicine, Health and Life Sciences", "Physics", "Social Sciences", "Other",
    }),
    "authorIdentifierScheme": frozenset({
        "ORCID", "ISNI", "LCNA", "VIAF", "GND", "DAI", "ResearcherID", "ScopusID",
    }),
    "publicationIDType": frozenset({
        "ark", "arXiv", "bibcode", "cstr", "doi", "ean13", "eissn", "handle", "isbn", "issn",
        "istc", "lissn", "lsid", "pmid", "purl", "upc", "url", "urn", "DASH-NRS",
    }),
    "publicationRelationType": frozenset({"IsCitedBy", "IsSupplementTo", "IsSupplementedBy", "IsReferencedBy"}),
    "language": frozenset({"English", "German", "French", "Japanese", "Spanish", "Other"}),
}  # fmt: skip
REQUIRED = (  # (typeName, child, display name): Dataverse's required citation fields
    ("title", None, "Title"),
    ("author", "authorName", "Author Name"),
    ("datasetContact", "datasetContactEmail", "Point of Contact E-mail"),
    ("dsDescription", "dsDescriptionValue", "Description Text"),
    ("subject", None, "Subject"),
)
LICENSES = {
    "CC0 1.0": "http://creativecommons.org/publicdomain/zero/1.0",
    "CC BY 4.0": "http://creativecommons.org/licenses/by/4.0",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_BAD_FILENAME = re.compile(r'[/\\:*?"<>|;#]')


class ApiError(Exception):
    """Raised inside a handler: becomes `{"status": "ERROR", "message": ...}` with `code`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse_json(body: bytes) -> Any:
    """A request's JSON (UTF-8); what is not JSON is a 400, as Dataverse answers."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ApiError(400, f"Error parsing Json: {err}") from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sanitize_directory_label(value: str) -> str:
    """Dataverse's StringUtil.sanitizeFileDirectory: replace invalid characters, strip ends."""
    value = re.sub(r"[^A-Za-z0-9_ ./\\-]+", "_", value)
    value = value.replace("\\", "/")
    value = re.sub(r"/+", "/", value)
    return value.strip("/.- ")


# --- storage ------------------------------------------------------------------------------------


@dataclass
class User:
    identifier: str  # "@admin"
    can_write: bool = True  # may create, edit and publish datasets and read drafts


@dataclass
class _DataFile:
    id: int
    filename: str
    content_type: str
    content: bytes  # what a plain download serves (the .tab after ingest)
    md5: str  # of the bytes that were uploaded
    created: str
    original: bytes | None = None  # the uploaded bytes, when ingested
    original_format: str | None = None
    original_name: str | None = None
    published: str | None = None
    root_id: int = -1
    previous_id: int | None = None


@dataclass
class _FileMeta:
    label: str
    directory_label: str | None
    datafile_id: int
    description: str = ""
    restricted: bool = False


@dataclass
class _Version:
    id: int
    state: str  # DRAFT | RELEASED
    fields: list[dict[str, Any]]
    license: dict[str, str]
    files: list[_FileMeta]
    created: str
    updated: str
    major: int | None = None
    minor: int | None = None
    released: str | None = None


@dataclass
class _Dataset:
    id: int
    identifier: str  # FK2/ABCDEF
    collection: str
    versions: list[_Version]
    created: str

    @property
    def pid(self) -> str:
        return f"doi:10.5072/{self.identifier}"

    @property
    def latest(self) -> _Version:
        return self.versions[-1]

    def released(self) -> list[_Version]:
        return [v for v in self.versions if v.state == "RELEASED"]


@dataclass
class Fault:
    """Make matching requests misbehave.

    method: HTTP method to match ("*" for any); path: regex searched in the normalized path
    (`/api/...`, no `/v1`, no query), e.g. r"/add$". The fault fires on the `nth` matching
    request and the `times - 1` following ones. Actions:
      "status"  answer HTTP `status` with an ERROR envelope, without acting;
      "drop"    close the connection without an answer, without acting;
      "hang"    wait `seconds` (past the client's timeout), then drop, without acting;
      "delay"   wait `seconds`, then act and answer normally;
      "lost"    act, then close the connection without an answer (a lost response).
    """

    method: str
    path: str
    action: str = "status"
    nth: int = 1
    times: int = 1
    status: int = 500
    seconds: float = 0.0
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and re.search(self.path, path) is not None


# --- the application ---------------------------------------------------------------------------


class DataverseStandin:
    """In-memory Dataverse on 127.0.0.1; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        tokens: dict[str, User | str] | None = None,
        collections: tuple[str, ...] = ("root",),
        host: str = "127.0.0.1",
        port: int = 0,
        max_file_size: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.users: dict[str, User] = {}
        for tok, user in (tokens or {}).items():
            self.users[tok] = user if isinstance(user, User) else User(user)
        self.collections: dict[str, dict[str, Any]] = {}
        self.datasets: dict[int, _Dataset] = {}
        self.datafiles: dict[int, _DataFile] = {}
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []  # (method, path?query, status; -1 dropped)
        self.max_file_size = max_file_size
        self._lock = threading.RLock()
        self._ids = iter(range(10, 10**9))
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        for alias in ("root", *collections):
            self.add_collection(alias)
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup ----------------------------------------------------------------------------------

    def add_collection(self, alias: str, *, name: str | None = None) -> None:
        if alias not in self.collections:
            self.collections[alias] = {
                "id": next(self._ids),
                "alias": alias,
                "name": name or alias,
                "dataverseType": "UNCATEGORIZED",
                "isReleased": True,
            }

    def add_user(self, token: str, identifier: str, *, can_write: bool = True) -> None:
        self.users[token] = User(identifier, can_write)

    def inject(self, method: str, path: str, action: str = "status", **kw: Any) -> Fault:
        """Add a Fault (see its docstring) and return it; `fault.fired` counts its firings."""
        fault = Fault(method=method, path=path, action=action, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_nth_upload(self, n: int, status: int = 500, times: int = 1) -> Fault:
        return self.inject(
            "POST", r"/datasets/[^/]+/add$", "status", nth=n, status=status, times=times
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> DataverseStandin:
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> DataverseStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the HTTP handler asks of the application ---------------------------------------------

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The fault that fires for this request (counting it as seen), or None."""
        with self._lock:
            for f in self.faults:
                if f.matches(method, path):
                    f.seen += 1
                    if f.nth <= f.seen < f.nth + f.times:
                        f.fired += 1
                        return f
        return None

    def pause(self, seconds: float) -> None:
        """Wait `seconds` (a hang or delay fault), or less when the stand-in stops."""
        self._stopping.wait(seconds)

    def record(self, method: str, logged_path: str, status: int) -> None:
        """Append to `log` (-1: the connection was dropped without an answer)."""
        with self._lock:
            self.log.append((method, logged_path, status))

    def dispatch(
        self, method: str, url: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        """Route, authenticate and run one request; (status, envelope or _Raw download).

        `url` is the request target as sent, `path` its normalized path (see Fault)."""
        try:
            routed = self.route(method, path)
            if routed is None:
                raise ApiError(404, API_ENDPOINT_MISSING)
            handler, params = routed
            with self._lock:
                user = self.authenticate(headers, query)
                code, data = getattr(self, f"h_{handler}")(
                    user, query, body=body, headers=headers, **params
                )
        except ApiError as err:
            payload = {"status": "ERROR", "message": err.message}
            if err.message == API_ENDPOINT_MISSING:
                payload.update(code=err.code, requestUrl=url, requestMethod=method)
            return err.code, payload
        return code, data if isinstance(data, _Raw) else {"status": "OK", "data": data}

    # -- lookups used by tests --------------------------------------------------------------------

    def dataset_by_pid(self, pid: str) -> _Dataset | None:
        for ds in self.datasets.values():
            if ds.pid == pid:
                return ds
        return None

    def count(self, method: str, path_regex: str) -> int:
        """How many logged requests matched (e.g. count("POST", r"/datasets$"))."""
        return sum(
            1 for m, p, _ in self.log if m == method and re.search(path_regex, p.split("?")[0])
        )

    # -- request dispatch ---------------------------------------------------------------------------

    _ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        (m, re.compile(p), h)
        for m, p, h in [
            ("GET", r"^/api/info/version$", "info_version"),
            ("GET", r"^/api/users/:me$", "users_me"),
            ("GET", r"^/api/dataverses/(?P<alias>[^/]+)$", "get_collection"),
            ("GET", r"^/api/dataverses/(?P<alias>[^/]+)/contents$", "collection_contents"),
            ("POST", r"^/api/dataverses/(?P<alias>[^/]+)/datasets$", "create_dataset"),
            ("GET", r"^/api/datasets/(?P<ds>[^/]+)$", "get_dataset"),
            ("GET", r"^/api/datasets/(?P<ds>[^/]+)/versions$", "list_versions"),
            ("GET", r"^/api/datasets/(?P<ds>[^/]+)/versions/(?P<v>[^/]+)/files$", "version_files"),
            ("GET", r"^/api/datasets/(?P<ds>[^/]+)/locks$", "locks"),
            ("POST", r"^/api/datasets/(?P<ds>[^/]+)/add$", "add_file"),
            ("PUT", r"^/api/datasets/(?P<ds>[^/]+)/editMetadata$", "edit_metadata"),
            ("POST", r"^/api/datasets/(?P<ds>[^/]+)/actions/:publish$", "publish"),
            ("POST", r"^/api/files/(?P<fid>\d+)/replace$", "replace_file"),
            ("DELETE", r"^/api/files/(?P<fid>\d+)$", "delete_file"),
            ("GET", r"^/api/access/datafile/(?P<fid>\d+)$", "access_datafile"),
            ("GET", r"^/api/access/dataset/(?P<ds>[^/]+)$", "access_dataset"),
        ]
    ]

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        known_path = False
        for m, pattern, handler in self._ROUTES:
            match = pattern.match(path)
            if match:
                known_path = True
                if m == method:
                    return handler, match.groupdict()
        if known_path:
            raise ApiError(405, API_ENDPOINT_MISSING)
        return None

    def authenticate(self, headers: Any, query: dict[str, str]) -> str | User:
        key = headers.get("X-Dataverse-key")
        if key is None:
            key = query.get("key")
        if key is None:
            return GUEST
        user = self.users.get(key)
        if user is None:
            raise ApiError(401, "Bad api key ")
        return user

    # -- helpers --------------------------------------------------------------------------------

    def _new_identifier(self) -> str:
        alphabet = string.ascii_uppercase + string.digits
        while True:
            ident = "FK2/" + "".join(self._rng.choice(alphabet) for _ in range(6))
            if all(ds.identifier != ident for ds in self.datasets.values()):
                return ident

    @staticmethod
    def _can_write(user: str | User) -> bool:
        """A user who may create, edit and publish datasets and read drafts."""
        return isinstance(user, User) and user.can_write

    @staticmethod
    def _not_permitted(user: str | User) -> ApiError:
        """Dataverse's refusal of an action: 401 for the guest, 403 for a user."""
        if user == GUEST:
            return ApiError(401, "User :guest is not permitted to perform requested action.")
        assert isinstance(user, User)
        return ApiError(
            403, f"User {user.identifier} is not permitted to perform requested action."
        )

    @classmethod
    def _require_writer(cls, user: str | User) -> User:
        if not cls._can_write(user):
            raise cls._not_permitted(user)
        assert isinstance(user, User)
        return user

    def _find_dataset(self, ds: str, query: dict[str, str]) -> _Dataset:
        if ds == ":persistentId":
            pid = query.get("persistentId")
            if not pid:
                raise ApiError(400, "No persistent id given (persistentId query parameter).")
            found = self.dataset_by_pid(pid)
            if found is None:
                raise ApiError(404, f"Dataset with Persistent ID {pid} not found.")
            return found
        if not ds.isdigit() or int(ds) not in self.datasets:
            raise ApiError(404, f"Dataset with ID {ds} not found.")
        return self.datasets[int(ds)]

    def _readable_version(self, ds: _Dataset, user: str | User, which: str = ":latest") -> _Version:
        if which in (":latest", ":draft") and self._can_write(user):
            if which == ":draft" and ds.latest.state != "DRAFT":
                raise ApiError(404, f"Dataset version :draft of dataset {ds.id} not found")
            return ds.latest
        released = ds.released()
        if which == ":draft" or not released:
            raise self._not_permitted(user)
        if which in (":latest", ":latest-published"):
            return released[-1]
        for v in released:
            if which in (f"{v.major}.{v.minor}", f"{v.major}") and (
                which.count(".") or v.minor == 0
            ):
                return v
        raise ApiError(404, f"Dataset version {which} of dataset {ds.id} not found")

    def _draft(self, ds: _Dataset) -> _Version:
        """The dataset's draft, created from the latest released version when needed."""
        latest = ds.latest
        if latest.state == "DRAFT":
            latest.updated = _now()
            return latest
        now = _now()
        draft = _Version(
            id=next(self._ids),
            state="DRAFT",
            fields=json.loads(json.dumps(latest.fields)),
            license=dict(latest.license),
            files=[_FileMeta(**vars(fm)) for fm in latest.files],
            created=now,
            updated=now,
        )
        ds.versions.append(draft)
        return draft

    # -- JSON renderings ----------------------------------------------------------------------------

    def _file_json(self, fm: _FileMeta, version: _Version) -> dict[str, Any]:
        df = self.datafiles[fm.datafile_id]
        data: dict[str, Any] = {
            "id": df.id,
            "persistentId": "",
            "filename": df.filename,
            "contentType": df.content_type,
            "filesize": len(df.content),
            "description": fm.description,
            "storageIdentifier": f"local://{df.id:012x}",
            "rootDataFileId": df.root_id,
            "md5": df.md5,
            "checksum": {"type": "MD5", "value": df.md5},
            "tabularData": df.original is not None,
            "creationDate": df.created[:10],
        }
        if df.previous_id is not None:
            data["previousDataFileId"] = df.previous_id
        if df.published:
            data["publicationDate"] = df.published[:10]
        if df.original is not None:
            data["originalFileFormat"] = df.original_format
            data["originalFormatLabel"] = "Comma Separated Values"
            data["originalFileSize"] = len(df.original)
            data["originalFileName"] = df.original_name
        out: dict[str, Any] = {
            "description": fm.description,
            "label": fm.label,
            "restricted": fm.restricted,
            "version": 1,
            "datasetVersionId": version.id,
            "dataFile": data,
        }
        if fm.directory_label:
            out["directoryLabel"] = fm.directory_label
        return out

    def _version_json(self, ds: _Dataset, v: _Version) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": v.id,
            "datasetId": ds.id,
            "datasetPersistentId": ds.pid,
            "storageIdentifier": f"file://10.5072/{ds.identifier}",
            "versionState": v.state,
            "latestVersionPublishingState": ds.latest.state,
            "lastUpdateTime": v.updated,
            "createTime": v.created,
            "license": v.license,
            "fileAccessRequest": False,
            "metadataBlocks": {
                "citation": {
                    "displayName": "Citation Metadata",
                    "name": "citation",
                    "fields": v.fields,
                }
            },
            "files": [self._file_json(fm, v) for fm in v.files],
        }
        if v.state == "RELEASED":
            out.update(versionNumber=v.major, versionMinorNumber=v.minor, releaseTime=v.released)
        return out

    @staticmethod
    def _dataset_ids(ds: _Dataset) -> dict[str, Any]:
        """The dataset's ids and publisher, as a collection's contents and the dataset's
        JSON both give them."""
        return {
            "id": ds.id,
            "identifier": ds.identifier,
            "persistentUrl": f"https://doi.org/10.5072/{ds.identifier}",
            "protocol": "doi",
            "authority": "10.5072",
            "separator": "/",
            "publisher": "Dataverse stand-in",
            "storageIdentifier": f"file://10.5072/{ds.identifier}",
        }

    def _dataset_json(self, ds: _Dataset, version: _Version | None) -> dict[str, Any]:
        out = self._dataset_ids(ds)
        released = ds.released()
        if released:
            out["publicationDate"] = released[0].released[:10]  # type: ignore[index]
        if version is not None:
            out["latestVersion"] = self._version_json(ds, version)
        return out

    # -- metadata validation -------------------------------------------------------------------------

    def _check_fields(self, fields: Any, *, require: bool) -> list[dict[str, Any]]:
        if not isinstance(fields, list):
            raise ApiError(400, "Error parsing Json: 'fields' must be an array")
        for f in fields:
            self._check_field(f, parent=None)
        if require:
            by_name = {f["typeName"]: f for f in fields}
            for name, child, display in REQUIRED:
                f = by_name.get(name)
                ok = f is not None and f["value"] not in (None, "", [])
                if ok and child is not None:
                    ok = any(
                        isinstance(v, dict) and str(v.get(child, {}).get("value", "")).strip()
                        for v in f["value"]
                    )
                if not ok:
                    raise ApiError(
                        400,
                        f"Validation Failed: {display} is required. "
                        "(Invalid value:edu.harvard.iq.dataverse.DatasetField[ id=null ]).",
                    )
        return fields

    def _check_field(self, f: Any, parent: str | None) -> None:
        if not isinstance(f, dict) or "typeName" not in f or "value" not in f:
            raise ApiError(400, "Error parsing Json: a field needs typeName and value")
        name = f["typeName"]
        spec = CITATION_FIELDS.get(name)
        if spec is None or spec[2] != parent:
            raise ApiError(400, f"Error parsing Json: Can't find type '{name}'")
        type_class, multiple, _ = spec
        if f.get("typeClass", type_class) != type_class:
            raise ApiError(
                400,
                f"Error parsing Json: incorrect  typeClass for field {name}, should be {type_class}",
            )
        if f.get("multiple", multiple) != multiple:
            raise ApiError(400, f"Error parsing Json: incorrect  multiple   for field {name}")
        values = f["value"] if multiple else [f["value"]]
        if not isinstance(values, list):
            raise ApiError(400, f"Error parsing Json: field {name} is multiple, expected an array")
        for v in values:
            if type_class == _C:
                if not isinstance(v, dict):
                    raise ApiError(400, f"Error parsing Json: compound field {name} needs objects")
                for child_name, child in v.items():
                    if not isinstance(child, dict) or child.get("typeName") != child_name:
                        raise ApiError(
                            400, f"Error parsing Json: malformed child {child_name} of {name}"
                        )
                    self._check_field(child, parent=name)
            else:
                if not isinstance(v, str):
                    raise ApiError(400, f"Error parsing Json: field {name} needs a string value")
                if type_class == _V and v not in VOCABULARIES.get(name, frozenset()):
                    raise ApiError(
                        400, f"Validation Failed: '{v}' is not a valid value for {name}."
                    )
                if name == "datasetContactEmail" and not _EMAIL.match(v):
                    raise ApiError(
                        400,
                        f"Validation Failed: Point of Contact E-mail {v} is not a valid email address.",
                    )

    # -- handlers: info, collections ------------------------------------------------------------------

    def h_info_version(self, user: Any, q: dict[str, str], **_: Any) -> tuple[int, Any]:
        return 200, {"version": "6.2", "build": "standin"}

    def h_users_me(self, user: Any, q: dict[str, str], **_: Any) -> tuple[int, Any]:
        if user == GUEST:
            raise ApiError(401, "User not found for the given API token.")
        return 200, {"identifier": user.identifier, "superuser": False}

    def _collection(self, alias: str) -> dict[str, Any]:
        coll = self.collections.get(alias)
        if coll is None:
            raise ApiError(404, f"Can't find dataverse with identifier='{alias}'")
        return coll

    def h_get_collection(
        self, user: Any, q: dict[str, str], alias: str, **_: Any
    ) -> tuple[int, Any]:
        return 200, dict(self._collection(alias))

    def h_collection_contents(
        self, user: Any, q: dict[str, str], alias: str, **_: Any
    ) -> tuple[int, Any]:
        self._collection(alias)
        can_draft = self._can_write(user)
        out = []
        for ds in sorted(self.datasets.values(), key=lambda d: d.id):
            if ds.collection != alias or not (ds.released() or can_draft):
                continue
            out.append({**self._dataset_ids(ds), "type": "dataset"})
        return 200, out

    def h_create_dataset(
        self, user: Any, q: dict[str, str], alias: str, body: bytes, **_: Any
    ) -> tuple[int, Any]:
        self._collection(alias)
        self._require_writer(user)
        doc = _parse_json(body)
        version = doc.get("datasetVersion") if isinstance(doc, dict) else None
        if not isinstance(version, dict):
            raise ApiError(400, "Error parsing Json: no 'datasetVersion' object")
        blocks = version.get("metadataBlocks")
        if not isinstance(blocks, dict) or not isinstance(blocks.get("citation"), dict):
            raise ApiError(400, "Error parsing Json: no citation metadata block")
        fields = self._check_fields(blocks["citation"].get("fields"), require=True)
        lic = version.get("license", {"name": "CC0 1.0", "uri": LICENSES["CC0 1.0"]})
        if not isinstance(lic, dict) or lic.get("name") not in LICENSES:
            raise ApiError(400, f"Error parsing Json: Invalid license: {lic!r}")
        now = _now()
        ds = _Dataset(
            id=next(self._ids),
            identifier=self._new_identifier(),
            collection=alias,
            versions=[
                _Version(
                    id=next(self._ids),
                    state="DRAFT",
                    fields=fields,
                    license={"name": lic["name"], "uri": LICENSES[lic["name"]]},
                    files=[],
                    created=now,
                    updated=now,
                )
            ],
            created=now,
        )
        self.datasets[ds.id] = ds
        return 201, {"id": ds.id, "persistentId": ds.pid}

    # -- handlers: datasets ---------------------------------------------------------------------------

    def h_get_dataset(self, user: Any, q: dict[str, str], ds: str, **_: Any) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        return 200, self._dataset_json(dataset, self._readable_version(dataset, user))

    def h_list_versions(self, user: Any, q: dict[str, str], ds: str, **_: Any) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        can_draft = self._can_write(user)
        versions = [v for v in dataset.versions if v.state == "RELEASED" or can_draft]
        if not versions:
            self._readable_version(dataset, user)  # raises the right 401/403
        return 200, [self._version_json(dataset, v) for v in reversed(versions)]

    def h_version_files(
        self, user: Any, q: dict[str, str], ds: str, v: str, **_: Any
    ) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        version = self._readable_version(dataset, user, v)
        return 200, [self._file_json(fm, version) for fm in version.files]

    def h_locks(self, user: Any, q: dict[str, str], ds: str, **_: Any) -> tuple[int, Any]:
        self._find_dataset(ds, q)
        return 200, []

    def h_edit_metadata(
        self, user: Any, q: dict[str, str], ds: str, body: bytes, **_: Any
    ) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        self._require_writer(user)
        doc = _parse_json(body)
        if not isinstance(doc, dict) or "fields" not in doc:
            raise ApiError(400, "Error parsing Json: expected an object with 'fields'")
        new_fields = self._check_fields(doc["fields"], require=False)
        replace = q.get("replace", "false").lower() == "true"
        draft = self._draft(dataset)
        by_name = {f["typeName"]: i for i, f in enumerate(draft.fields)}
        merged = list(draft.fields)
        for f in new_fields:
            name = f["typeName"]
            multiple = CITATION_FIELDS[name][1]
            if name in by_name:
                if replace:
                    merged[by_name[name]] = f
                elif multiple:
                    merged[by_name[name]] = dict(
                        f, value=merged[by_name[name]]["value"] + f["value"]
                    )
                else:
                    raise ApiError(
                        400,
                        "You may not add data to a field that already has data and does not "
                        f"allow multiples. Use replace=true to replace existing data ({name})",
                    )
            else:
                merged.append(f)
        self._check_fields(merged, require=True)
        draft.fields = merged
        return 200, self._version_json(dataset, draft)

    def h_publish(self, user: Any, q: dict[str, str], ds: str, **_: Any) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        self._require_writer(user)
        kind = q.get("type")
        if kind not in ("major", "minor", "updatecurrent"):
            raise ApiError(
                400,
                f"Illegal 'type' parameter value '{kind}'. It needs to be either 'major', "
                "'minor', or 'updatecurrent'.",
            )
        if kind == "updatecurrent":
            raise ApiError(403, "Only superusers can update the current version")
        latest = dataset.latest
        if latest.state != "DRAFT":
            raise ApiError(
                403, "Cannot publish: the latest version of this dataset is already published."
            )
        released = dataset.released()
        if not released:
            latest.major, latest.minor = 1, 0
        else:
            prev = released[-1]
            files_changed = sorted(fm.datafile_id for fm in prev.files) != sorted(
                fm.datafile_id for fm in latest.files
            )
            if kind == "minor" and files_changed:
                raise ApiError(403, "Cannot release as minor version. Re-try as major release.")
            if kind == "major":
                latest.major, latest.minor = prev.major + 1, 0  # type: ignore[operator]
            else:
                latest.major, latest.minor = prev.major, prev.minor + 1  # type: ignore[operator]
        now = _now()
        latest.state, latest.released, latest.updated = "RELEASED", now, now
        for fm in latest.files:
            df = self.datafiles[fm.datafile_id]
            df.published = df.published or now
        return 200, self._dataset_json(dataset, None)

    # -- handlers: files ------------------------------------------------------------------------------

    def _parse_upload(self, headers: Any, body: bytes) -> tuple[str, bytes, dict[str, Any]]:
        ctype = headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(
                400, "Error! The request must be multipart/form-data with a 'file' part."
            )
        parts = parse_multipart(body, ctype)
        if "file" not in parts or parts["file"][0] is None:
            raise ApiError(
                400, "Error! The file was not present in the request (a 'file' part is required)."
            )
        filename, content = parts["file"]
        meta: dict[str, Any] = {}
        if "jsonData" in parts:
            meta = _parse_json(parts["jsonData"][1] or b"{}")
            if not isinstance(meta, dict):
                raise ApiError(400, "Error parsing Json: jsonData must be an object")
        if not filename or _BAD_FILENAME.search(filename):
            raise ApiError(400, f"Invalid file name: '{filename}'.")
        if self.max_file_size is not None and len(content) > self.max_file_size:
            raise ApiError(
                400,
                f"File size exceeds the limit: the file is {len(content)} bytes, the limit is "
                f"{self.max_file_size} bytes.",
            )
        return filename, content, meta

    @staticmethod
    def _flag(meta: dict[str, Any], key: str, default: bool) -> bool:
        value = meta.get(key, default)
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def _store(self, filename: str, content: bytes, ingest: bool) -> _DataFile:
        df = _DataFile(
            id=next(self._ids),
            filename=filename,
            content_type=mimetypes.guess_type(filename)[0] or "application/octet-stream",
            content=content,
            md5=hashlib.md5(content).hexdigest(),
            created=_now(),
        )
        stem, dot, ext = filename.rpartition(".")
        if ingest and dot and ext.lower() in ("csv", "tsv"):
            try:
                text = content.decode("utf-8")
                rows = list(
                    csv.reader(io.StringIO(text), delimiter="," if ext.lower() == "csv" else "\t")
                )
            except (UnicodeDecodeError, csv.Error):
                rows = None
            if rows:  # ingest: serve tab-delimited without the header line, keep the original
                tab = "".join("\t".join(r) + "\n" for r in rows[1:]).encode()
                df.original, df.content = content, tab
                df.original_format = "text/csv" if ext.lower() == "csv" else "text/tsv"
                df.original_name, df.filename = filename, f"{stem}.tab"
                df.content_type = "text/tab-separated-values"
        self.datafiles[df.id] = df
        return df

    @staticmethod
    def _unique_label(
        version: _Version, directory: str | None, label: str, skip: _FileMeta | None = None
    ) -> str:
        taken = {
            fm.label for fm in version.files if fm.directory_label == directory and fm is not skip
        }
        if label not in taken:
            return label
        stem, dot, ext = label.rpartition(".")
        if not dot:
            stem, ext = label, ""
        n = 1
        while True:
            candidate = f"{stem}-{n}{'.' + ext if dot else ''}"
            if candidate not in taken:
                return candidate
            n += 1

    def h_add_file(
        self, user: Any, q: dict[str, str], ds: str, body: bytes, headers: Any, **_: Any
    ) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        self._require_writer(user)
        filename, content, meta = self._parse_upload(headers, body)
        directory = sanitize_directory_label(str(meta.get("directoryLabel") or "")) or None
        ingest = self._flag(meta, "tabIngest", True)
        members: list[tuple[str | None, str, bytes]] = []
        if filename.lower().endswith(".zip"):
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as zf:
                    for info in zf.infolist():
                        name = info.filename
                        base = name.rsplit("/", 1)[-1]
                        if (
                            info.is_dir()
                            or name.startswith("__MACOSX/")
                            or base.startswith("._")
                            or base == ".DS_Store"
                        ):
                            continue
                        sub = name.rsplit("/", 1)[0] if "/" in name else ""
                        d = sanitize_directory_label(
                            "/".join(p for p in (directory or "", sub) if p)
                        )
                        members.append((d or None, base, zf.read(info)))
            except zipfile.BadZipFile:
                members = []
        if not members:
            members = [(directory, filename, content)]
        draft = self._draft(dataset)
        out = []
        for d, name, data in members:
            df = self._store(name, data, ingest)
            fm = _FileMeta(
                label=self._unique_label(draft, d, df.filename),
                directory_label=d,
                datafile_id=df.id,
                description=str(meta.get("description", "")),
                restricted=self._flag(meta, "restrict", False),
            )
            draft.files.append(fm)
            out.append(self._file_json(fm, draft))
        return 200, {"files": out}

    def _file_in_latest(self, fid: int) -> tuple[_Dataset, _FileMeta]:
        for dataset in self.datasets.values():
            for fm in dataset.latest.files:
                if fm.datafile_id == fid:
                    return dataset, fm
        raise ApiError(
            404, f"Error attempting get the requested data file. (File with ID {fid} not found.)"
        )

    def h_replace_file(
        self, user: Any, q: dict[str, str], fid: str, body: bytes, headers: Any, **_: Any
    ) -> tuple[int, Any]:
        dataset, old_fm = self._file_in_latest(int(fid))
        self._require_writer(user)
        filename, content, meta = self._parse_upload(headers, body)
        old = self.datafiles[old_fm.datafile_id]
        if not old.published:
            raise ApiError(
                400,
                "You cannot replace an unpublished file. Please delete it instead of replacing it.",
            )
        new_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if new_type != old.content_type and not self._flag(meta, "forceReplace", False):
            raise ApiError(
                400,
                f"The original file ({old.content_type}) and replacement file ({new_type}) are "
                "different file types.",
            )
        draft = self._draft(dataset)
        fm = next(f for f in draft.files if f.datafile_id == old.id)
        df = self._store(filename, content, self._flag(meta, "tabIngest", True))
        df.root_id = old.root_id if old.root_id != -1 else old.id
        df.previous_id = old.id
        fm.datafile_id = df.id
        if "directoryLabel" in meta:
            fm.directory_label = sanitize_directory_label(str(meta["directoryLabel"])) or None
        fm.label = self._unique_label(draft, fm.directory_label, df.filename, skip=fm)
        return 200, {"files": [self._file_json(fm, draft)]}

    def h_delete_file(self, user: Any, q: dict[str, str], fid: str, **_: Any) -> tuple[int, Any]:
        dataset, _fm = self._file_in_latest(int(fid))
        self._require_writer(user)
        draft = self._draft(dataset)
        draft.files = [f for f in draft.files if f.datafile_id != int(fid)]
        df = self.datafiles[int(fid)]
        if not df.published:
            del self.datafiles[int(fid)]
        return 200, {"message": f"Deleted file {fid} from the draft version of the dataset"}

    # -- handlers: access API ----------------------------------------------------------------------------

    def _can_read_file(self, fid: int, user: Any) -> bool:
        df = self.datafiles.get(fid)
        if df is None:
            raise ApiError(404, f"Datafile {fid}: File not found")
        if df.published:
            return True
        return self._can_write(user)

    def h_access_datafile(
        self, user: Any, q: dict[str, str], fid: str, **_: Any
    ) -> tuple[int, Any]:
        if not self._can_read_file(int(fid), user):
            raise ApiError(403, ACCESS_FORBIDDEN)
        df = self.datafiles[int(fid)]
        if q.get("format") == "original" and df.original is not None:
            return 200, _Raw(
                df.original,
                df.original_format or "application/octet-stream",
                df.original_name or df.filename,
            )
        return 200, _Raw(df.content, df.content_type, df.filename)

    def h_access_dataset(self, user: Any, q: dict[str, str], ds: str, **_: Any) -> tuple[int, Any]:
        dataset = self._find_dataset(ds, q)
        try:
            version = self._readable_version(dataset, user)
        except ApiError as err:
            raise ApiError(403, ACCESS_FORBIDDEN) from err
        original = q.get("format") == "original"
        buf = io.BytesIO()
        manifest = [f"Files in the dataset {dataset.pid}, version {version.state}:", ""]
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for fm in version.files:
                df = self.datafiles[fm.datafile_id]
                data, name = df.content, fm.label
                if original and df.original is not None:
                    data, name = df.original, df.original_name or fm.label
                arc = f"{fm.directory_label}/{name}" if fm.directory_label else name
                zf.writestr(arc, data)
                manifest.append(f"{arc} ({df.content_type}) {len(data)} bytes.")
            zf.writestr("MANIFEST.TXT", "\n".join(manifest) + "\n")
        return 200, _Raw(buf.getvalue(), "application/zip", "dataverse_files.zip")


@dataclass
class _Raw:
    """A non-JSON response body (file downloads)."""

    data: bytes
    content_type: str
    filename: str


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """Split a multipart/form-data body into {name: (filename or None, bytes)}, byte-exact."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise ApiError(400, "Error! multipart body without a boundary.")
    delim = b"--" + m.group(1).encode("latin-1")
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delim)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value
        name_m = re.search(r'(?:^|;)\s*name="((?:[^"\\]|\\.)*)"', disposition)
        if not name_m:
            continue
        file_m = re.search(r'filename="((?:[^"\\]|\\.)*)"', disposition)
        filename = None
        if file_m:
            filename = file_m.group(1).replace("\\\\", "\\")
        out[name_m.group(1)] = (filename, content)
    return out


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP adapter: read body, resolve faults, route, envelope the answer."""

    app: DataverseStandin
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "DataverseStandin/6.2"

    def log_message(self, format: str, *args: Any) -> None:  # quiet; never logs headers
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, payload: Any) -> None:
        if isinstance(payload, _Raw):
            body, ctype = payload.data, payload.content_type
            extra = {"Content-Disposition": f'attachment; filename="{payload.filename}"'}
        else:
            body = json.dumps(payload).encode()
            ctype, extra = "application/json;charset=utf-8", {}
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True

    def _handle(self) -> None:
        app = self.app
        body = self._read_body()
        split = urlsplit(self.path)
        path = re.sub(r"^/api/v1(/|$)", r"/api\1", split.path)
        path = path.rstrip("/") or "/"
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        logged = split.path + (f"?{unquote(split.query)}" if split.query else "")
        logged = re.sub(r"([?&])key=[^&]*", r"\1key=***", logged)

        fault = app.take_fault(self.command, path)
        if fault is not None and fault.action in ("status", "drop", "hang"):
            if fault.action == "hang":
                app.record(self.command, logged, -1)
                app.pause(fault.seconds)
                self._drop()
                return
            if fault.action == "status":
                app.record(self.command, logged, fault.status)
                message = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                           504: "Gateway Timeout", 429: "Too many requests"}.get(fault.status, "Injected fault")  # fmt: skip
                self._send(fault.status, {"status": "ERROR", "message": message})
                return
            app.record(self.command, logged, -1)
            self._drop()
            return
        if fault is not None and fault.action == "delay":
            app.pause(fault.seconds)

        code, payload = app.dispatch(self.command, self.path, path, query, self.headers, body)
        if fault is not None and fault.action == "lost":
            app.record(self.command, logged, -1)
            self._drop()
            return
        app.record(self.command, logged, code)
        self._send(code, payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.dataverse_standin",
        description="Serve a local, in-memory Dataverse stand-in (Native + Data Access API subset).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", required=True, help="API token accepted for user @admin")
    parser.add_argument(
        "--collection", action="append", default=[], help="collection alias (repeatable)"
    )
    args = parser.parse_args(argv)
    standin = DataverseStandin(
        tokens={args.token: "@admin"}, collections=tuple(args.collection) or ("a4nn",),
        host=args.host, port=args.port,
    )  # fmt: skip
    standin.start()
    print(f"Dataverse stand-in at {standin.url}; collections: {', '.join(standin.collections)}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        standin.stop()


if __name__ == "__main__":
    main()
