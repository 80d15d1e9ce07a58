"""Gmail v1 for FakeGoogle: a mailbox of messages with attachments, labels, in memory.

Tests fill it with `fake.gmail.add_message(...)`. Like real Gmail, every
messages.get hands out fresh attachment ids, and every id ever handed out keeps
working with messages.attachments.get.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from tests.fakes.google import Request, Response, google_error

if TYPE_CHECKING:
    from tests.fakes.google import FakeGoogle

SYSTEM_LABELS = ["INBOX", "UNREAD", "STARRED", "IMPORTANT", "SENT", "DRAFT", "SPAM", "TRASH",
                 "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS",
                 "CATEGORY_UPDATES", "CATEGORY_FORUMS"]


def b64url(data: bytes) -> str:
    """Gmail's body encoding: URL-safe base64, padded."""
    return base64.urlsafe_b64encode(data).decode()


def _search_form(name: str) -> str:
    """Gmail search matches label names case-blind, with `/`, spaces and `-` alike."""
    return re.sub(r"[\s/\-]+", "-", name.strip().lower())


class GmailError(Exception):
    def __init__(self, status: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class FakeGmail:
    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        self.lock = threading.RLock()
        self.messages: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, dict[str, Any]] = {
            name: {"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS}
        self.attachment_ids: dict[str, tuple[str, int]] = {}  # id -> (message id, index)
        self._next_label = 1
        self._history = 1000
        self.cuts = 0  # attachment downloads still to cut short
        self._add_routes(fake)

    # --- test-side arrangement ---------------------------------------------

    def add_message(self, sender: str, subject: str,
                    attachments: Iterable[tuple[str, bytes, str]] = (), body_text: str = "",
                    unread: bool = True, date: datetime | None = None,
                    to: str = "station@example.com") -> str:
        """A message in the inbox; returns its id."""
        date = date or datetime.now(UTC)
        if date.tzinfo is None:
            date = date.replace(tzinfo=UTC)
        message_id = secrets.token_hex(8)
        with self.lock:
            self._history += 1
            self.messages[message_id] = {
                "id": message_id, "threadId": message_id, "from": sender, "to": to,
                "subject": subject, "date": date, "body_text": body_text,
                "attachments": [tuple(a) for a in attachments],
                "labelIds": {"INBOX", "UNREAD"} if unread else {"INBOX"},
                "internalDate": int(date.timestamp() * 1000), "historyId": self._history}
        return message_id

    def add_label(self, name: str) -> str:
        """A user label; returns its id (Label_N)."""
        with self.lock:
            if any(label["name"].lower() == name.lower() for label in self.labels.values()):
                raise GmailError(409, "Label name exists or conflicts", "duplicate")
            label_id = f"Label_{self._next_label}"
            self._next_label += 1
            self.labels[label_id] = {"id": label_id, "name": name, "type": "user",
                                     "messageListVisibility": "show",
                                     "labelListVisibility": "labelShow"}
        return label_id

    def cut_attachment_downloads(self, times: int = 1) -> None:
        """The next `times` attachments.get answers drop the connection half-way.

        As a real dropped connection does: the headers promise the whole body
        (Content-Length), half of it is sent, then the socket closes. The client
        then raises http.client.IncompleteRead.
        """
        with self.lock:
            self.cuts += times

    def labels_of(self, message_id: str) -> set[str]:
        """Label names of a message (system labels are named by their ids: INBOX, UNREAD)."""
        with self.lock:
            return {self.labels[label]["name"] for label in self.messages[message_id]["labelIds"]}

    # --- search ----------------------------------------------------------------

    def _matcher(self, q: str) -> Callable[[dict[str, Any]], bool]:
        tests: list[Callable[[dict[str, Any]], bool]] = []
        for term in re.findall(r'-?\w+:(?:"[^"]*"|\S+)|"[^"]*"|\S+', q):
            negate, term = term.startswith("-"), term.lstrip("-")
            key, _, value = term.partition(":")
            key, value = key.lower(), value.strip('"').strip()
            if key == "has" and value.lower() == "attachment":
                test = lambda m: bool(m["attachments"])  # noqa: E731
            elif key == "is" and value.lower() in ("unread", "read", "starred"):
                test = {"unread": lambda m: "UNREAD" in m["labelIds"],
                        "read": lambda m: "UNREAD" not in m["labelIds"],
                        "starred": lambda m: "STARRED" in m["labelIds"]}[value.lower()]
            elif key in ("label", "in"):
                wanted = _search_form(value)
                test = lambda m, w=wanted: any(  # noqa: E731
                    w in (_search_form(self.labels[label]["name"]), _search_form(label))
                    for label in m["labelIds"])
            elif key in ("from", "subject"):
                needle = value.lower()
                test = lambda m, k=key, v=needle: v in m[k].lower()  # noqa: E731
            else:
                continue  # Gmail knows many more operators; the fake ignores them
            tests.append((lambda m, t=test: not t(m)) if negate else test)
        return lambda message: all(test(message) for test in tests)

    # --- HTTP ------------------------------------------------------------------

    def _add_routes(self, fake: FakeGoogle) -> None:
        user = r"/gmail/v1/users/(?P<user>[^/]+)"
        message = user + r"/messages/(?P<message_id>[^/]+)"
        for method, pattern, handler in [
            ("GET", user + r"/messages", self._http_list),
            ("GET", message, self._http_get),
            ("GET", message + r"/attachments/(?P<attachment_id>[^/]+)", self._http_attachment),
            ("POST", message + r"/modify", self._http_modify),
            ("GET", user + r"/labels", self._http_labels),
            ("POST", user + r"/labels", self._http_create_label),
        ]:
            fake.route(method, pattern, fake.authorized(self._guard(handler)))

    @staticmethod
    def _guard(handler: Callable[..., Response]) -> Callable[..., Response]:
        def run(req: Request, **kwargs: Any) -> Response:
            try:
                return handler(req, **kwargs)
            except GmailError as exc:
                return google_error(exc.status, str(exc), exc.reason)
            except ValueError as exc:
                return google_error(400, str(exc), "invalidArgument")
        return run

    def _message(self, message_id: str) -> dict[str, Any]:
        if message_id not in self.messages:
            raise GmailError(404, "Requested entity was not found.", "notFound")
        return self.messages[message_id]

    def _http_list(self, req: Request, user: str) -> Response:
        size = int(req.arg("maxResults", "100"))
        if not 1 <= size <= 500:
            raise GmailError(400, "Invalid maxResults: must be within [1, 500]", "invalidArgument")
        token = req.arg("pageToken") or "0"
        if not token.isdigit():
            raise GmailError(400, "Invalid pageToken", "invalidArgument")
        offset, matches = int(token), self._matcher(req.arg("q") or "")
        wanted = set(req.query.get("labelIds", []))
        hidden = set() if req.arg("includeSpamTrash") == "true" else {"SPAM", "TRASH"}
        with self.lock:
            found = sorted((m for m in self.messages.values()
                            if wanted <= m["labelIds"] and not hidden & m["labelIds"]
                            and matches(m)),
                           key=lambda m: (m["internalDate"], m["historyId"]), reverse=True)
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        page = found[offset:offset + size]
        if page:  # like Gmail, no "messages" key at all when nothing matches
            body["messages"] = [{"id": m["id"], "threadId": m["threadId"]} for m in page]
        if offset + size < len(found):
            body["nextPageToken"] = str(offset + size)
        return Response(200, body)

    def _http_get(self, req: Request, user: str, message_id: str) -> Response:
        style = req.arg("format", "full")
        if style not in ("full", "metadata", "minimal"):
            raise GmailError(400, f"The fake does not serve format={style}", "invalidArgument")
        with self.lock:
            msg = self._message(message_id)
            body: dict[str, Any] = {
                "id": msg["id"], "threadId": msg["threadId"], "labelIds": sorted(msg["labelIds"]),
                "snippet": msg["body_text"][:100], "historyId": str(msg["historyId"]),
                "internalDate": str(msg["internalDate"]),
                "sizeEstimate": 500 + sum(len(a[1]) * 4 // 3 for a in msg["attachments"])}
            if style == "minimal":
                return Response(200, body)
            boundary = secrets.token_hex(14)
            headers = [{"name": "From", "value": msg["from"]}, {"name": "To", "value": msg["to"]},
                       {"name": "Subject", "value": msg["subject"]},
                       {"name": "Date", "value": format_datetime(msg["date"])},
                       {"name": "Message-ID", "value": f"<{msg['id']}@mail.example.com>"},
                       {"name": "Content-Type",
                        "value": f'multipart/mixed; boundary="{boundary}"'}]
            payload: dict[str, Any] = {"partId": "", "mimeType": "multipart/mixed",
                                       "filename": "", "headers": headers, "body": {"size": 0}}
            if style == "metadata":
                only = {h.lower() for h in req.query.get("metadataHeaders", [])}
                payload["headers"] = [h for h in headers if not only or h["name"].lower() in only]
                body["payload"] = {k: payload[k] for k in ("mimeType", "headers")}
                return Response(200, body)
            text = msg["body_text"].encode()
            parts = [{"partId": "0", "mimeType": "text/plain", "filename": "",
                      "headers": [{"name": "Content-Type", "value": 'text/plain; charset="UTF-8"'}],
                      "body": {"size": len(text), "data": b64url(text)}}]
            for index, (filename, data, mime_type) in enumerate(msg["attachments"]):
                attachment_id = "ANGjdJ" + secrets.token_urlsafe(96)  # new on every get
                self.attachment_ids[attachment_id] = (message_id, index)
                parts.append({
                    "partId": str(index + 1), "mimeType": mime_type, "filename": filename,
                    "headers": [
                        {"name": "Content-Type", "value": f'{mime_type}; name="{filename}"'},
                        {"name": "Content-Disposition",
                         "value": f'attachment; filename="{filename}"'},
                        {"name": "Content-Transfer-Encoding", "value": "base64"}],
                    "body": {"attachmentId": attachment_id, "size": len(data)}})
            body["payload"] = {**payload, "parts": parts}
        return Response(200, body)

    def _http_attachment(self, req: Request, user: str, message_id: str,
                         attachment_id: str) -> Response:
        with self.lock:
            self._message(message_id)
            owner, index = self.attachment_ids.get(attachment_id, (None, 0))
            if owner != message_id:
                raise GmailError(400, "Invalid attachment token", "invalidArgument")
            data = self.messages[message_id]["attachments"][index][1]
            cut, self.cuts = self.cuts > 0, max(0, self.cuts - 1)
        body = json.dumps({"size": len(data), "data": b64url(data)}).encode()
        return Response(200, body, {"Content-Type": "application/json; charset=UTF-8"},
                        truncate_at=len(body) // 2 if cut else None)

    def _http_modify(self, req: Request, user: str, message_id: str) -> Response:
        change = req.json()
        add, remove = change.get("addLabelIds") or [], change.get("removeLabelIds") or []
        with self.lock:
            msg = self._message(message_id)
            for label in [*add, *remove]:
                if label not in self.labels:
                    raise GmailError(400, f"Invalid label: {label}", "invalidArgument")
            msg["labelIds"] = (msg["labelIds"] | set(add)) - set(remove)
            self._history += 1
            msg["historyId"] = self._history
            return Response(200, {"id": msg["id"], "threadId": msg["threadId"],
                                  "labelIds": sorted(msg["labelIds"])})

    def _http_labels(self, req: Request, user: str) -> Response:
        with self.lock:
            return Response(200, {"labels": [dict(label) for label in self.labels.values()]})

    def _http_create_label(self, req: Request, user: str) -> Response:
        name = (req.json().get("name") or "").strip()
        if not name:
            raise GmailError(400, "Invalid label name", "invalidArgument")
        if name.upper() in SYSTEM_LABELS:
            raise GmailError(400, "Invalid label name", "invalidArgument")
        label_id = self.add_label(name)
        with self.lock:
            return Response(200, dict(self.labels[label_id]))
