"""Drive v3 for FakeGoogle: files, media download/upload and the changes feed, in memory.

Tests arrange state with the methods below (`fake.drive.add_file(...)`); every
mutation appends one change to the changes log, as Drive's own changes feed
would report it. Children are indexed by parent so `'ID' in parents` queries
stay fast with 100,000 files.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.fakes.google import (
    Request,
    Response,
    apply_fields,
    discovery_document,
    google_error,
    parse_fields,
)

if TYPE_CHECKING:
    from tests.fakes.google import FakeGoogle

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
ROOT = "root"
DEFAULT_FILE_FIELDS: dict[str, Any] = {"kind": None, "id": None, "name": None, "mimeType": None}
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "File": DEFAULT_FILE_FIELDS,
    "FileList": {"kind": None, "incompleteSearch": None, "nextPageToken": None,
                 "files": DEFAULT_FILE_FIELDS},
    "ChangeList": {"kind": None, "nextPageToken": None, "newStartPageToken": None,
                   "changes": {"kind": None, "type": None, "changeType": None, "time": None,
                               "removed": None, "fileId": None, "file": DEFAULT_FILE_FIELDS}},
    "StartPageToken": {"kind": None, "startPageToken": None},
}


class ApiError(Exception):
    """Answered as Google's JSON error by the routes."""

    def __init__(self, message: str, location: str | None = None, status: int = 400,
                 reason: str = "invalid") -> None:
        super().__init__(message)
        self.location, self.status, self.reason = location, status, reason


def rfc3339(ms: int) -> str:
    """Google's timestamp form: 2024-05-01T10:00:00.123Z."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def check_fields(tree: dict[str, Any], schema: str) -> None:
    """Names unknown to Drive's schema are a 400, as Google answers them."""
    properties = discovery_document("drive", "v3")["schemas"][schema]["properties"]
    for name, sub in tree.items():
        if name == "*":
            continue
        if name not in properties:
            raise ApiError(f"Invalid field selection {name}", "fields")
        if sub:
            ref = properties[name].get("$ref") or properties[name].get("items", {}).get("$ref")
            if not ref:
                raise ApiError(f"Invalid field selection {name}", "fields")
            check_fields(sub, ref)


def select(fields: str | None, body: dict[str, Any], schema: str) -> Response:
    if fields:
        try:
            tree = parse_fields(fields)
        except ValueError as exc:
            raise ApiError(str(exc), "fields") from None
        check_fields(tree, schema)
    else:
        tree = DEFAULT_FIELDS[schema]
    return Response(200, apply_fields(body, tree))


# --- `q`: terms joined by `and` ----------------------------------------------------

_STR = r"'((?:[^'\\]|\\.)*)'"
_TERMS = [
    (re.compile(_STR + r"\s+in\s+parents", re.I), "parents"),
    (re.compile(r"trashed\s*(=|!=)\s*(true|false)\b", re.I), "trashed"),
    (re.compile(r"(mimeType|name)\s*(=|!=)\s*" + _STR), "compare"),
    (re.compile(r"name\s+contains\s+" + _STR), "contains"),
]


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_query(q: str) -> tuple[str | None, list[Callable[[dict], bool]]]:
    """(parent id or None, predicates on a file dict); ApiError for what the fake lacks."""
    parent, preds, pos = None, [], 0
    q = q.strip()
    while q:
        for pattern, term in _TERMS:
            match = pattern.match(q, pos)
            if match:
                kind = term
                break
        else:
            raise ApiError(f"Invalid Value (the fake does not know the query term at: "
                           f"{q[pos:]!r})", "q")
        groups = match.groups()
        if kind == "parents":
            value = _unquote(groups[0])
            if parent is not None and parent != value:
                preds.append(lambda f, v=value: v in f["parents"])
            parent = parent or value
        elif kind == "trashed":
            wanted = (groups[1].lower() == "true") == (groups[0] == "=")
            preds.append(lambda f, w=wanted: f["trashed"] is w)
        elif kind == "compare":
            key, equal, value = groups[0], groups[1] == "=", _unquote(groups[2])
            preds.append(lambda f, k=key, e=equal, v=value: (f[k] == v) is e)
        else:
            value = _unquote(groups[0]).lower()
            preds.append(lambda f, v=value: v in f["name"].lower())
        pos = match.end()
        rest = q[pos:].lstrip()
        if not rest:
            break
        joiner = re.match(r"and\s+", rest, re.I)
        if not joiner:
            raise ApiError(f"Invalid Value (the fake only joins terms with 'and': {rest!r})", "q")
        pos = len(q) - len(rest) + joiner.end()
    return parent, preds


def _page_size(req: Request, default: int = 100) -> int:
    raw = req.arg("pageSize", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ApiError(f"Invalid value '{raw}'. Values must be within the range: [1, 1000]",
                       "pageSize")
    return int(raw)


class FakeDrive:
    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        self.lock = threading.RLock()
        self.files: dict[str, dict[str, Any]] = {}
        self.content: dict[str, bytes] = {}
        self.children: dict[str, dict[str, None]] = {}
        self.changes: list[tuple[int, str, bool, str]] = []  # (number, fileId, removed, time)
        self.next_change = 1
        self.oldest_valid_token = 1
        self.truncations = 0
        self.download_errors: dict[str, tuple[int, str, str, str | None]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self._mtime_ms: dict[str, int] = {}
        self._add_routes(fake)

    # --- test-side arrangement ---------------------------------------------

    def add_folder(self, name: str, parent_id: str | None = None) -> str:
        return self._add(name, parent_id, FOLDER)

    def add_file(self, name: str, parent_id: str | None, content: bytes,
                 mime_type: str = "audio/mpeg") -> str:
        return self._add(name, parent_id, mime_type, content=content)

    def add_metadata_file(self, name: str, parent_id: str | None, md5: str, size: int,
                          mime_type: str = "audio/mpeg") -> str:
        """A file with checksum and size but no bytes (downloading it answers 404)."""
        return self._add(name, parent_id, mime_type, md5=md5, size=size)

    def add_shortcut(self, name: str, parent_id: str | None, target_id: str) -> str:
        """A shortcut, as Drive has them: its own id, name and single parent, mimeType
        application/vnd.google-apps.shortcut and shortcutDetails {targetId, targetMimeType}
        (the target's type copied when the shortcut is made). It has no bytes: downloading it
        answers 403 fileNotDownloadable, like any application/vnd.google-apps.* file."""
        with self.lock:
            target_mime = self._get(target_id)["mimeType"]
        file_id = self._add(name, parent_id, SHORTCUT)
        with self.lock:
            file = self.files[file_id]
            file["shortcutDetails"] = {"targetId": target_id, "targetMimeType": target_mime}
            del file["md5Checksum"], file["size"]  # no content of its own
        return file_id

    def add_parent(self, file_id: str, parent_id: str, first: bool = False) -> None:
        """Give a file a second parent, as legacy Drive files may have (new files cannot:
        Drive now answers 403 cannotAddParent, see _update). Drive does not order `parents`:
        `first=True` puts the new parent ahead of the old one."""
        with self.lock:
            file = self._get(file_id)
            self._get(parent_id)
            file["parents"] = [parent_id, *file["parents"]] if first else [*file["parents"], parent_id]
            self.children.setdefault(parent_id, {})[file_id] = None
            self._bump(file_id)

    def rename(self, file_id: str, name: str) -> None:
        with self.lock:
            self._get(file_id)["name"] = name
            self._bump(file_id)

    def move(self, file_id: str, new_parent_id: str | None) -> None:
        with self.lock:
            self._set_parent(file_id, new_parent_id or ROOT)
            self._bump(file_id)

    def set_content(self, file_id: str, content: bytes) -> None:
        with self.lock:
            self._set_content(file_id, content)
            self._bump(file_id)

    def trash(self, file_id: str, report_descendants: bool = True) -> None:
        """Trash a file; a folder's descendants become trashed too.

        Real Drive: `trashed` is "whether the file has been trashed, either explicitly or
        from a trashed parent folder"; `explicitlyTrashed` is true only for the item trashed
        itself, false for what was "recursively trashed from a parent folder". The changes
        feed reports the folder; whether it also reports each descendant is not documented,
        so a test can choose: one change each (default) or the folder alone
        (`report_descendants=False`). Either way the descendants read as trashed."""
        with self.lock:
            self._get(file_id).update(trashed=True, explicitlyTrashed=True)
            self._bump(file_id)
            for child in self._descendants(file_id, lambda f: not f["trashed"]):
                self.files[child]["trashed"] = True
                if report_descendants:
                    self._bump(child)

    def untrash(self, file_id: str, report_descendants: bool = True) -> None:
        """Restore a file; in a folder, restore what was trashed with it, not what had been
        trashed on its own before (explicitlyTrashed stays). Changes as for trash()."""
        with self.lock:
            self._get(file_id).update(trashed=False, explicitlyTrashed=False)
            self._bump(file_id)
            for child in self._descendants(file_id, lambda f: not f["explicitlyTrashed"]):
                if self.files[child]["trashed"]:
                    self.files[child]["trashed"] = False
                    if report_descendants:
                        self._bump(child)

    def delete(self, file_id: str) -> None:
        """Delete for good, descendants included: changes with removed=true."""
        with self.lock:
            self._get(file_id)
            for gone in [file_id, *self._descendants(file_id, lambda f: True)]:
                file = self.files.pop(gone)
                for parent in file["parents"]:
                    self.children.get(parent, {}).pop(gone, None)
                self.children.pop(gone, None)
                self.content.pop(gone, None)
                self._record(gone, True, rfc3339(self._tick(gone)))
                del self._mtime_ms[gone]

    def expire_tokens_before_now(self) -> None:
        """Every changes page token issued so far answers 410 from now on."""
        with self.lock:
            self.next_change += 1
            self.oldest_valid_token = self.next_change

    def truncate_downloads(self, times: int = 1) -> None:
        """The next `times` media downloads drop the connection after half the bytes."""
        with self.lock:
            self.truncations += times

    # What real Drive answers to `files.get?alt=media` for one file it will not serve while
    # serving every other (metadata, listing and changes still show the file):
    # - a file Google flagged as malware or spam: 403 cannotDownloadAbusiveFile, "This file
    #   has been identified as malware or spam and cannot be downloaded." (only its owner may
    #   pass acknowledgeAbuse=true);
    # - a file whose owner turned downloading off: 403 cannotDownloadFile;
    # - a file the caller cannot see (or gone between listing and download): 404 notFound,
    #   "File not found: <id>.", location fileId;
    # - a blob whose storage fails: 500 backendError "Backend Error" or 503 backendError
    #   "The service is currently unavailable.", on every attempt while it lasts.
    # Bodies: {"error": {"errors": [{"domain": "global", "reason": …, "message": …}],
    #          "code": …, "message": …}} (Drive API guide, "Resolve errors").
    DOWNLOAD_ERRORS = {
        "cannotDownloadAbusiveFile": (
            403, "This file has been identified as malware or spam and cannot be downloaded."),
        "cannotDownloadFile": (403, "The user does not have permission to download this file."),
        "notFound": (404, "File not found: {id}."),
        "backendError": (500, "Backend Error"),
    }

    def fail_downloads(self, file_id: str, reason: str = "cannotDownloadAbusiveFile",
                       status: int | None = None) -> None:
        """Every media download of this file answers Drive's error `reason` until
        `allow_downloads`; `status` overrides the usual one (503 for backendError)."""
        default_status, message = self.DOWNLOAD_ERRORS[reason]
        location = "fileId" if reason == "notFound" else None
        with self.lock:
            self._get(file_id)
            self.download_errors[file_id] = (status or default_status, reason,
                                             message.format(id=file_id), location)

    def allow_downloads(self, file_id: str) -> None:
        with self.lock:
            self.download_errors.pop(file_id, None)

    # --- internals (callers hold self.lock) ----------------------------------

    def _get(self, file_id: str) -> dict[str, Any]:
        try:
            return self.files[file_id]
        except KeyError:
            raise KeyError(f"File not found: {file_id}.") from None

    def _add(self, name: str, parent_id: str | None, mime_type: str, *, content: bytes | None = None,
             md5: str | None = None, size: int | None = None) -> str:
        file_id = "1" + secrets.token_urlsafe(24)
        parent = parent_id or ROOT
        with self.lock:
            if parent != ROOT:
                self._get(parent)
            file = {"kind": "drive#file", "id": file_id, "name": name, "mimeType": mime_type,
                    "parents": [parent], "trashed": False, "explicitlyTrashed": False}
            self.files[file_id] = file
            self.children.setdefault(parent, {})[file_id] = None
            if content is not None:
                self._set_content(file_id, content)
            elif mime_type != FOLDER:
                file.update(md5Checksum=md5, size=str(size))
            self._bump(file_id)
            file["createdTime"] = file["modifiedTime"]
        return file_id

    def _set_parent(self, file_id: str, parent: str) -> None:
        file = self._get(file_id)
        if parent != ROOT:
            self._get(parent)
            if parent == file_id or parent in self._descendants(file_id, lambda f: True):
                raise ValueError("a folder cannot move into itself")
        for old in file["parents"]:  # a move leaves every old parent (legacy multi-parent too)
            self.children.get(old, {}).pop(file_id, None)
        self.children.setdefault(parent, {})[file_id] = None
        file["parents"] = [parent]

    def _set_content(self, file_id: str, content: bytes) -> None:
        self.content[file_id] = content
        self._get(file_id).update(md5Checksum=hashlib.md5(content).hexdigest(),
                                  size=str(len(content)))

    def _bump(self, file_id: str) -> None:
        """New modifiedTime (strictly later than the last one of this file) and a change."""
        when = rfc3339(self._tick(file_id))
        self.files[file_id]["modifiedTime"] = when
        self._record(file_id, False, when)

    def _tick(self, file_id: str) -> int:
        ms = max(int(time.time() * 1000), self._mtime_ms.get(file_id, 0) + 1)
        self._mtime_ms[file_id] = ms
        return ms

    def _record(self, file_id: str, removed: bool, when: str) -> None:
        self.changes.append((self.next_change, file_id, removed, when))
        self.next_change += 1

    def _descendants(self, folder_id: str, descend: Callable[[dict], bool]) -> list[str]:
        """Ids under folder_id, pre-order; only enters children for which descend() holds."""
        found, stack = [], [folder_id]
        while stack:
            for child in list(self.children.get(stack.pop(), {})):
                if descend(self.files[child]):
                    found.append(child)
                    stack.append(child)
        return found

    def _copy(self, file_id: str) -> dict[str, Any]:
        file = self._get(file_id)
        return {**file, "parents": list(file["parents"])}

    # --- what the routes read ----------------------------------------------

    def list_files(self, q: str, page_size: int, offset: int) -> tuple[list[dict], bool]:
        parent, preds = parse_query(q)
        with self.lock:
            ids = self.children.get(parent, {}) if parent is not None else self.files
            matched = [fid for fid in ids if all(pred(self.files[fid]) for pred in preds)]
            page = [self._copy(fid) for fid in matched[offset:offset + page_size]]
        return page, offset + page_size < len(matched)

    def list_changes(self, token: str, page_size: int, include_removed: bool) -> dict[str, Any]:
        if not token.isdigit():
            raise ApiError(f"Invalid Value: pageToken {token!r}", "pageToken")
        start = int(token)
        with self.lock:
            if start < self.oldest_valid_token:
                raise ApiError("The page token is no longer valid: start over from "
                               "changes.getStartPageToken.", "pageToken", 410, "pageTokenExpired")
            if not 1 <= start <= self.next_change:
                raise ApiError(f"Invalid Value: pageToken {token!r}", "pageToken")
            index = bisect.bisect_left(self.changes, start, key=lambda change: change[0])
            changes, last = [], start - 1
            while index < len(self.changes) and len(changes) < page_size:
                number, file_id, removed, when = self.changes[index]
                index, last = index + 1, number
                removed = removed or file_id not in self.files
                if removed and not include_removed:
                    continue
                change = {"kind": "drive#change", "type": "file", "changeType": "file",
                          "fileId": file_id, "removed": removed, "time": when}
                if not removed:
                    change["file"] = self._copy(file_id)
                changes.append(change)
            body: dict[str, Any] = {"kind": "drive#changeList", "changes": changes}
            if index < len(self.changes):
                body["nextPageToken"] = str(last + 1)
            else:
                body["newStartPageToken"] = str(self.next_change)
        return body

    # --- HTTP ------------------------------------------------------------------

    def _add_routes(self, fake: FakeGoogle) -> None:
        files = r"/drive/v3/files"
        one = files + r"/(?P<file_id>[^/]+)"
        for method, pattern, handler in [
            ("GET", files, self._http_list), ("POST", files, self._http_create),
            ("GET", one, self._http_get), ("PATCH", one, self._http_update),
            ("DELETE", one, self._http_delete),
            ("POST", "/upload" + files, self._http_upload),
            ("PATCH", "/upload" + one, self._http_upload),
            ("GET", r"/drive/v3/changes/startPageToken", self._http_start_token),
            ("GET", r"/drive/v3/changes", self._http_changes),
        ]:
            fake.route(method, pattern, fake.authorized(self._guard(handler)))
        # The session URL is the credential, as with Google.
        fake.route("PUT", "/upload" + files + r"(?:/(?P<file_id>[^/]+))?",
                   self._guard(self._http_session))

    @staticmethod
    def _guard(handler: Callable[..., Response]) -> Callable[..., Response]:
        def run(req: Request, **kwargs: Any) -> Response:
            try:
                return handler(req, **kwargs)
            except ApiError as exc:
                return google_error(exc.status, str(exc), exc.reason, exc.location)
            except KeyError as exc:
                return google_error(404, str(exc.args[0]), "notFound", "fileId")
            except ValueError as exc:
                return google_error(400, str(exc), "invalid")
        return run

    def _http_list(self, req: Request) -> Response:
        size, token = _page_size(req), req.arg("pageToken")
        match = re.fullmatch(r"~!!~(\d+)", token) if token else None
        if token and not match:
            raise ApiError(f"Invalid Value: pageToken {token!r}", "pageToken")
        offset = int(match[1]) if match else 0
        page, more = self.list_files(req.arg("q") or "", size, offset)
        body: dict[str, Any] = {"kind": "drive#fileList", "incompleteSearch": False, "files": page}
        if more:
            body["nextPageToken"] = f"~!!~{offset + size}"
        return select(req.arg("fields"), body, "FileList")

    def _http_get(self, req: Request, file_id: str) -> Response:
        with self.lock:
            file = self._copy(file_id)
        if req.arg("alt") == "media":
            return self._media(req, file)
        return select(req.arg("fields"), file, "File")

    def _media(self, req: Request, file: dict[str, Any]) -> Response:
        if file["mimeType"].startswith("application/vnd.google-apps."):
            raise ApiError("Only files with binary content can be downloaded. Use Export with "
                           "Docs Editors files.", "alt", 403, "fileNotDownloadable")
        with self.lock:
            refused = self.download_errors.get(file["id"])
        if refused is not None:
            status, reason, message, location = refused
            raise ApiError(message, location, status, reason)
        with self.lock:
            content = self.content.get(file["id"])
            truncate = content is not None and self.truncations > 0
            self.truncations -= truncate
        if content is None:
            raise ApiError(f"The fake holds no bytes for {file['id']} (add_metadata_file).",
                           None, 404, "notFound")
        total, status, body = len(content), 200, content
        headers = {"Content-Type": file["mimeType"]}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", req.header("Range").strip())
        if wanted:
            start = int(wanted[1])
            end = min(int(wanted[2]) if wanted[2] else total - 1, total - 1)
            if start >= total:
                error = google_error(416, "Request range not satisfiable")
                return Response(416, error.body, {"Content-Range": f"bytes */{total}"})
            status, body = 206, content[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        return Response(status, body, headers, truncate_at=len(body) // 2 if truncate else None)

    def _http_start_token(self, req: Request) -> Response:
        with self.lock:
            body = {"kind": "drive#startPageToken", "startPageToken": str(self.next_change)}
        return select(req.arg("fields"), body, "StartPageToken")

    def _http_changes(self, req: Request) -> Response:
        body = self.list_changes(req.arg("pageToken") or "", _page_size(req),
                                 req.arg("includeRemoved", "true") != "false")
        return select(req.arg("fields"), body, "ChangeList")

    def _http_create(self, req: Request) -> Response:
        return self._finish_upload(req.arg("fields"), None, req.json(), None, None)

    def _http_update(self, req: Request, file_id: str) -> Response:
        self._update(file_id, req.json(), req.arg("addParents"), req.arg("removeParents"))
        with self.lock:
            return select(req.arg("fields"), self._copy(file_id), "File")

    def _http_delete(self, req: Request, file_id: str) -> Response:
        self.delete(file_id)
        return Response(204, b"")

    def _http_upload(self, req: Request, file_id: str | None = None) -> Response:
        kind = req.arg("uploadType")
        if kind == "multipart":
            meta, content, media_type = parse_multipart(req)
        elif kind == "media":
            meta, content, media_type = {}, req.body, req.header("Content-Type")
        elif kind == "resumable":
            session = secrets.token_urlsafe(16)
            total = req.header("X-Upload-Content-Length")
            with self.lock:
                self.sessions[session] = {
                    "meta": req.json(), "file_id": file_id, "fields": req.arg("fields"),
                    "total": int(total) if total.isdigit() else None, "data": bytearray(),
                    "mime": req.header("X-Upload-Content-Type") or None}
            target = "/" + file_id if file_id else ""
            return Response(200, b"", {"Location": f"{self.fake.url}/upload/drive/v3/files"
                                       f"{target}?uploadType=resumable&upload_id={session}"})
        else:
            raise ApiError(f"Invalid uploadType {kind!r}", "uploadType")
        return self._finish_upload(req.arg("fields"), file_id, meta, content, media_type)

    def _http_session(self, req: Request, file_id: str | None = None) -> Response:
        with self.lock:
            session = self.sessions.get(req.arg("upload_id") or "")
            if session is None:
                raise ApiError("No such upload session.", "upload_id", 404, "notFound")
            data, sent = session["data"], req.header("Content-Range").strip()
            if sent:
                parts = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", sent)
                if not parts or (parts[1] and int(parts[1]) > len(data)):
                    raise ApiError(f"Invalid Content-Range {sent!r}", "Content-Range")
                if parts[1]:
                    del data[int(parts[1]):]
                    data += req.body
                if parts[2] != "*":
                    session["total"] = int(parts[2])
            else:
                data += req.body
                session["total"] = len(data)
            if session["total"] is None or len(data) < session["total"]:
                return Response(308, b"", {"Range": f"bytes=0-{len(data) - 1}"} if data else {})
            del self.sessions[req.arg("upload_id")]
        return self._finish_upload(session["fields"], session["file_id"], session["meta"],
                                   bytes(data), session["mime"])

    def _finish_upload(self, fields: str | None, file_id: str | None, meta: dict[str, Any],
                       content: bytes | None, media_type: str | None) -> Response:
        if file_id is not None:
            self._update(file_id, meta, None, None, content)
        else:
            parents = meta.get("parents") or [ROOT]
            if len(parents) != 1:
                raise ApiError("A file must have exactly one parent.", "parents")
            mime = meta.get("mimeType") or media_type or "application/octet-stream"
            if content is None and not mime.startswith("application/vnd.google-apps."):
                content = b""
            file_id = self._add(meta.get("name") or "Untitled", parents[0], mime, content=content)
        with self.lock:
            return select(fields, self._copy(file_id), "File")

    def _update(self, file_id: str, meta: dict[str, Any], add_parents: str | None,
                remove_parents: str | None, content: bytes | None = None) -> None:
        """One files.update: one change (plus the trash cascade if `trashed` flips)."""
        with self.lock:
            file = self._get(file_id)
            if add_parents:
                if add_parents.count(",") or (remove_parents or "").split(",") != file["parents"]:
                    raise ApiError("Increasing the number of parents is not allowed.",
                                   "addParents", 403, "cannotAddParent")
                self._set_parent(file_id, add_parents)
            if "name" in meta:
                file["name"] = meta["name"]
            if content is not None:
                self._set_content(file_id, content)
            if add_parents or "name" in meta or content is not None or "trashed" not in meta:
                self._bump(file_id)
            if "trashed" in meta and bool(meta["trashed"]) != file["trashed"]:
                (self.trash if meta["trashed"] else self.untrash)(file_id)


def parse_multipart(req: Request) -> tuple[dict[str, Any], bytes, str | None]:
    """(metadata, media bytes, media type) of a multipart/related upload body.

    googleapiclient writes it with bare LF line ends; others use CRLF. Binary safe.
    """
    boundary = re.search(r'boundary="?([^";]+)"?', req.header("Content-Type"))
    if not boundary:
        raise ApiError("multipart upload without a boundary", "uploadType")
    chunks = req.body.split(b"--" + boundary[1].encode())
    if len(chunks) < 3:
        raise ApiError("multipart upload needs a metadata part and a media part", "uploadType")
    eol = b"\r\n" if chunks[1].startswith(b"\r\n") else b"\n"
    parts = []
    for chunk in chunks[1:-1]:
        head, _, body = chunk[len(eol):].partition(eol + eol)
        headers = dict(line.decode().lower().split(":", 1) for line in head.split(eol) if line)
        parts.append(({k: v.strip() for k, v in headers.items()}, body.removesuffix(eol)))
    (_, meta), (media_headers, media) = parts[0], parts[1]
    return json.loads(meta or b"{}"), media, media_headers.get("content-type")
