"""The fake Google speaks Drive v3 and Gmail v1 well enough for the real client.

Every test goes through google-api-python-client built the way radio/google.py
builds it: discovery from the fake, AuthorizedHttp over httplib2, plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import re
import secrets

import google_auth_httplib2
import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import MediaFileUpload, MediaInMemoryUpload, MediaIoBaseDownload

from tests.fakes.drive import FOLDER
from tests.fakes.google import FakeGoogle

TOKEN = "ya29.test-token"
RFC3339_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def fake():
    fake = FakeGoogle().start()
    fake.allow_token(TOKEN)
    yield fake
    fake.stop()


def service(fake: FakeGoogle, api: str, version: str, credentials=None, timeout: float = 10,
            http: httplib2.Http | None = None):
    """As radio.google.google_service builds it when GOOGLE_API_ENDPOINT is set."""
    http = google_auth_httplib2.AuthorizedHttp(
        credentials or Credentials(token=TOKEN), http=http or httplib2.Http(timeout=timeout))
    return build(api, version, http=http, static_discovery=False, cache_discovery=False,
                 discoveryServiceUrl=f"{fake.url}/discovery/v1/apis/{{api}}/{{apiVersion}}/rest")


@pytest.fixture
def drive(fake):
    return service(fake, "drive", "v3")


@pytest.fixture
def gmail(fake):
    return service(fake, "gmail", "v1")


def error_of(exc: HttpError) -> dict:
    return json.loads(exc.content)["error"]


def download(drive, file_id: str, chunksize: int) -> bytes:
    buffer = io.BytesIO()
    downloader = MediaIoBaseDownload(buffer, drive.files().get_media(fileId=file_id),
                                     chunksize=chunksize)
    done = False
    while not done:
        _, done = downloader.next_chunk()
    return buffer.getvalue()


def all_changes(drive, token: str, page_size: int = 100) -> tuple[list[dict], str, int]:
    """(changes, newStartPageToken, pages) following nextPageToken."""
    changes, pages = [], 0
    while True:
        page = drive.changes().list(
            pageToken=token, pageSize=page_size,
            fields="nextPageToken,newStartPageToken,changes(fileId,removed,time,"
                   "file(id,name,parents,trashed,md5Checksum,modifiedTime))").execute()
        changes += page["changes"]
        pages += 1
        if "newStartPageToken" in page:
            return changes, page["newStartPageToken"], pages
        token = page["nextPageToken"]


# --- Drive: discovery, listing, fields ----------------------------------------------


def test_discovery_aims_every_url_at_the_fake(fake, drive, gmail):
    assert drive._baseUrl == f"{fake.url}/drive/v3/"
    assert gmail._baseUrl == f"{fake.url}/"
    assert fake.count("GET", "/discovery/v1/apis/drive/v3/rest") == 1


def test_list_paginates_with_page_size_1000(fake, drive):
    folder = fake.drive.add_folder("Library")
    for i in range(2500):
        fake.drive.add_metadata_file(f"song{i}.mp3", folder, "0" * 32, 1000)
    ids, pages, token = [], 0, None
    while True:
        page = drive.files().list(q=f"'{folder}' in parents", pageSize=1000, pageToken=token,
                                  fields="nextPageToken,files(id,name)").execute()
        ids += [f["id"] for f in page["files"]]
        pages += 1
        token = page.get("nextPageToken")
        if not token:
            break
    assert pages == 3 and len(ids) == len(set(ids)) == 2500
    assert fake.count("GET", "/drive/v3/files") == 3


def test_fields_without_next_page_token_hide_it_like_google(fake, drive):
    folder = fake.drive.add_folder("Library")
    for i in range(3):
        fake.drive.add_file(f"{i}.mp3", folder, b"x")
    page = drive.files().list(q=f"'{folder}' in parents", pageSize=2, fields="files(id)").execute()
    assert list(page) == ["files"] and len(page["files"]) == 2


def test_query_on_parents_trashed_mime_type_and_name(fake, drive):
    folder = fake.drive.add_folder("Shows")
    sub = fake.drive.add_folder("Jingles", folder)
    keep = fake.drive.add_file("news.mp3", folder, b"a")
    gone = fake.drive.add_file("old.mp3", folder, b"b")
    fake.drive.add_file("it's.wav", folder, b"c", mime_type="audio/wav")
    fake.drive.add_file("elsewhere.mp3", None, b"d")
    fake.drive.trash(gone)

    def names(q: str) -> set[str]:
        return {f["name"] for f in drive.files().list(q=q).execute()["files"]}

    assert names(f"'{folder}' in parents") == {"Jingles", "news.mp3", "old.mp3", "it's.wav"}
    assert names(f"'{folder}' in parents and trashed = false") == {"Jingles", "news.mp3", "it's.wav"}
    assert names(f"'{folder}' in parents and trashed=true") == {"old.mp3"}
    assert names(f"'{folder}' in parents and mimeType = '{FOLDER}'") == {"Jingles"}
    assert names(f"'{folder}' in parents and mimeType != '{FOLDER}' and trashed = false "
                 "and mimeType = 'audio/mpeg'") == {"news.mp3"}
    assert names("name = 'it\\'s.wav'") == {"it's.wav"}
    assert names("'root' in parents") == {"Shows", "elsewhere.mp3"}
    assert names(f"'{sub}' in parents") == set()
    assert keep in {f["id"] for f in drive.files().list(q="trashed = false").execute()["files"]}
    with pytest.raises(HttpError) as exc:
        drive.files().list(q="modifiedTime > '2024-01-01T00:00:00'").execute()
    assert exc.value.resp.status == 400 and error_of(exc.value)["errors"][0]["location"] == "q"


def test_fields_select_keys_like_google(fake, drive):
    folder = fake.drive.add_folder("Shows")
    file_id = fake.drive.add_file("news.mp3", folder, b"hello")
    assert drive.files().get(fileId=file_id).execute() == {
        "kind": "drive#file", "id": file_id, "name": "news.mp3", "mimeType": "audio/mpeg"}
    assert drive.files().get(fileId=file_id, fields="id,md5Checksum,size").execute() == {
        "id": file_id, "md5Checksum": hashlib.md5(b"hello").hexdigest(), "size": "5"}
    full = drive.files().get(fileId=file_id, fields="*").execute()
    assert full["parents"] == [folder] and full["trashed"] is False
    assert RFC3339_MS.fullmatch(full["modifiedTime"])
    listed = drive.files().list(q="'root' in parents", fields="files(id,md5Checksum,size)").execute()
    assert listed == {"files": [{"id": folder}]}  # folders have no checksum or size
    with pytest.raises(HttpError) as exc:
        drive.files().get(fileId=file_id, fields="id,md5").execute()
    assert exc.value.resp.status == 400
    with pytest.raises(HttpError) as exc:
        drive.files().get(fileId="nope").execute()
    assert exc.value.resp.status == 404 and error_of(exc.value)["errors"][0]["reason"] == "notFound"


# --- Drive: media --------------------------------------------------------------------


def test_download_in_small_ranged_chunks(fake, drive):
    content = secrets.token_bytes(10_000)
    file_id = fake.drive.add_file("show.mp3", None, content)
    assert download(drive, file_id, chunksize=1024) == content
    ranged = [r for r in fake.requests if r.path == f"/drive/v3/files/{file_id}"]
    assert len(ranged) == 10 and ranged[1].header("Range") == "bytes=1024-2047"
    assert drive.files().get_media(fileId=file_id).execute() == content


def test_truncated_download_is_noticed(fake, drive):
    content = secrets.token_bytes(4000)
    file_id = fake.drive.add_file("show.mp3", None, content)
    fake.drive.truncate_downloads(times=1)
    with pytest.raises(http.client.IncompleteRead):
        download(drive, file_id, chunksize=100_000)
    assert download(drive, file_id, chunksize=100_000) == content


def test_download_of_a_metadata_only_file_is_404(fake, drive):
    file_id = fake.drive.add_metadata_file("big.mp3", None, "0" * 32, 10**9)
    assert drive.files().get(fileId=file_id, fields="size").execute() == {"size": str(10**9)}
    with pytest.raises(HttpError) as exc:
        drive.files().get_media(fileId=file_id).execute()
    assert exc.value.resp.status == 404


# --- Drive: uploads ---------------------------------------------------------------------


def test_multipart_upload_creates_a_file_seen_in_list_and_changes(fake, drive):
    folder = fake.drive.add_folder("Inbox")
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    content = b"ID3\r\n\n\x00\xff--binary\r" * 50
    created = drive.files().create(
        body={"name": "promo.mp3", "parents": [folder]},
        media_body=MediaInMemoryUpload(content, mimetype="audio/mpeg"),
        fields="id,name,parents,mimeType,md5Checksum,size").execute()
    assert created["md5Checksum"] == hashlib.md5(content).hexdigest()
    assert created["size"] == str(len(content)) and created["parents"] == [folder]
    assert fake.drive.content[created["id"]] == content
    assert fake.count("POST", "/upload/drive/v3/files") == 1
    listed = drive.files().list(q=f"'{folder}' in parents").execute()["files"]
    assert [f["id"] for f in listed] == [created["id"]]
    changes, _, _ = all_changes(drive, start)
    assert [c["fileId"] for c in changes] == [created["id"]]


def test_resumable_upload_in_one_request(fake, drive, tmp_path):
    path = tmp_path / "show.mp3"
    path.write_bytes(secrets.token_bytes(300_000))
    created = drive.files().create(
        body={"name": "show.mp3"}, fields="id,md5Checksum",
        media_body=MediaFileUpload(str(path), mimetype="audio/mpeg", resumable=True)).execute()
    assert created["md5Checksum"] == hashlib.md5(path.read_bytes()).hexdigest()
    assert fake.count("PUT", "/upload/drive/v3/files") == 1
    assert fake.drive.files[created["id"]]["parents"] == ["root"]


def test_resumable_upload_in_chunks_answers_308_without_location(fake):
    content = secrets.token_bytes(600_000)
    plain = httplib2.Http(timeout=10)
    plain.redirect_codes = plain.redirect_codes - {308}  # as googleapiclient's build_http()
    drive = service(fake, "drive", "v3", http=plain)
    request = drive.files().create(
        body={"name": "long.mp3", "mimeType": "audio/mpeg"}, fields="id,size",
        media_body=MediaInMemoryUpload(content, mimetype="audio/mpeg", chunksize=256 * 1024,
                                       resumable=True))
    created = None
    while created is None:
        _, created = request.next_chunk()
    assert created["size"] == "600000" and fake.drive.content[created["id"]] == content
    assert fake.count("PUT", "/upload/drive/v3/files") == 3

    # Real Google's 308 carries no Location: an httplib2.Http that still counts 308 as a
    # redirect (the default) fails on chunked uploads, as it would against Google.
    strict = service(fake, "drive", "v3").files().create(
        body={"name": "again.mp3"},
        media_body=MediaInMemoryUpload(content, mimetype="audio/mpeg", chunksize=256 * 1024,
                                       resumable=True))
    with pytest.raises(httplib2.RedirectMissingLocation):
        strict.execute()


def test_create_folder_and_update_metadata(fake, drive):
    folder = drive.files().create(body={"name": "New", "mimeType": FOLDER},
                                  fields="id,mimeType").execute()
    assert folder["mimeType"] == FOLDER
    other = fake.drive.add_folder("Other")
    file_id = fake.drive.add_file("a.mp3", folder["id"], b"a")
    drive.files().update(fileId=file_id, body={"name": "b.mp3"}, addParents=other,
                         removeParents=folder["id"]).execute()
    assert fake.drive.files[file_id]["name"] == "b.mp3"
    assert fake.drive.files[file_id]["parents"] == [other]
    drive.files().update(fileId=file_id, body={"trashed": True}).execute()
    assert fake.drive.files[file_id]["trashed"] is True
    drive.files().delete(fileId=file_id).execute()
    assert file_id not in fake.drive.files


# --- Drive: changes feed ---------------------------------------------------------------


def test_changes_feed_reports_every_mutation_in_order(fake, drive):
    old = fake.drive.add_folder("Before")
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    folder = fake.drive.add_folder("Shows")
    file_id = fake.drive.add_file("a.mp3", folder, b"one")
    fake.drive.rename(file_id, "b.mp3")
    fake.drive.move(file_id, old)
    fake.drive.trash(file_id)
    fake.drive.untrash(file_id)
    fake.drive.set_content(file_id, b"two")
    fake.drive.delete(file_id)

    changes, new_start, pages = all_changes(drive, start, page_size=3)
    assert pages == 3
    assert [(c["fileId"], c["removed"]) for c in changes] == (
        [(folder, False)] + [(file_id, True)] * 7)  # the file is gone now: removed
    assert "file" not in changes[-1] and changes[0]["file"]["name"] == "Shows"
    assert all(RFC3339_MS.fullmatch(c["time"]) for c in changes)
    assert [c["time"] for c in changes[1:]] == sorted(c["time"] for c in changes[1:])
    assert new_start == drive.changes().getStartPageToken().execute()["startPageToken"]
    assert all_changes(drive, new_start)[0] == []


def test_changes_carry_the_current_state_of_each_file(fake, drive):
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    folder = fake.drive.add_folder("Shows")
    file_id = fake.drive.add_file("a.mp3", folder, b"one")
    before = fake.drive.files[file_id]["modifiedTime"]
    fake.drive.set_content(file_id, b"two")
    fake.drive.trash(folder)  # trashes what is inside too, one change each
    changes, _, _ = all_changes(drive, start)
    assert [c["fileId"] for c in changes] == [folder, file_id, file_id, folder, file_id]
    latest = changes[-1]["file"]
    assert latest["trashed"] is True and latest["md5Checksum"] == hashlib.md5(b"two").hexdigest()
    assert latest["modifiedTime"] > before
    fake.drive.untrash(folder)
    assert fake.drive.files[file_id]["trashed"] is False


def test_expired_and_malformed_page_tokens(fake, drive):
    token = drive.changes().getStartPageToken().execute()["startPageToken"]
    fake.drive.add_folder("x")
    fake.drive.expire_tokens_before_now()
    with pytest.raises(HttpError) as exc:
        drive.changes().list(pageToken=token).execute()
    assert exc.value.resp.status == 410 and error_of(exc.value)["code"] == 410
    with pytest.raises(HttpError) as exc:
        drive.changes().list(pageToken="abc").execute()
    assert exc.value.resp.status == 400
    fresh = drive.changes().getStartPageToken().execute()["startPageToken"]
    fake.drive.add_folder("y")
    assert len(all_changes(drive, fresh)[0]) == 1


def test_big_drive_lists_one_folder_quickly(fake, drive):
    folders = [fake.drive.add_folder(f"F{i}") for i in range(100)]
    for i in range(100_000):
        fake.drive.add_metadata_file(f"{i}.mp3", folders[i % 100], "0" * 32, 1000)
    small = fake.drive.add_folder("small")
    for i in range(10):
        fake.drive.add_metadata_file(f"s{i}.mp3", small, "0" * 32, 10)
    page = drive.files().list(q=f"'{small}' in parents and trashed = false",
                              fields="files(id,name,md5Checksum,size)").execute()
    assert len(page["files"]) == 10


def test_trashing_a_folder_trashes_its_contents_implicitly_and_restore_spares_the_earlier_trash(
        fake, drive):
    folder = fake.drive.add_folder("Shows")
    sub = fake.drive.add_folder("Old", folder)
    inside = fake.drive.add_file("a.mp3", sub, b"a")
    alone = fake.drive.add_file("b.mp3", folder, b"b")
    fake.drive.trash(alone)  # on its own, before the folder
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    fake.drive.trash(folder, report_descendants=False)

    def state(file_id: str) -> tuple[bool, bool]:
        got = drive.files().get(fileId=file_id, fields="trashed,explicitlyTrashed").execute()
        return got["trashed"], got["explicitlyTrashed"]

    assert state(folder) == (True, True)
    assert state(sub) == state(inside) == (True, False)  # trashed with it, not explicitly
    assert [c["fileId"] for c in all_changes(drive, start)[0]] == [folder]
    assert drive.files().list(q=f"'{sub}' in parents and trashed = false").execute()["files"] == []
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    fake.drive.untrash(folder, report_descendants=False)
    assert state(folder) == state(sub) == state(inside) == (False, False)
    assert state(alone) == (True, True)  # trashed on its own: stays in the trash
    assert [c["fileId"] for c in all_changes(drive, start)[0]] == [folder]


def test_moving_a_folder_in_reports_the_folder_alone(fake, drive):
    library, outside = fake.drive.add_folder("Library"), fake.drive.add_folder("Elsewhere")
    fake.drive.add_file("a.mp3", outside, b"a")
    start = drive.changes().getStartPageToken().execute()["startPageToken"]
    fake.drive.move(outside, library)
    assert [c["fileId"] for c in all_changes(drive, start)[0]] == [outside]


def test_legacy_file_with_two_parents_is_listed_under_both(fake, drive):
    library, outside = fake.drive.add_folder("Library"), fake.drive.add_folder("Elsewhere")
    file_id = fake.drive.add_file("a/b.mp3", library, b"a")  # a name may hold a slash
    fake.drive.add_parent(file_id, outside, first=True)
    got = drive.files().get(fileId=file_id, fields="name,parents").execute()
    assert got == {"name": "a/b.mp3", "parents": [outside, library]}
    for parent in (library, outside):
        listed = drive.files().list(q=f"'{parent}' in parents", fields="files(id)").execute()
        assert listed["files"] == [{"id": file_id}]
    fake.drive.move(file_id, library)  # a move leaves every old parent
    assert drive.files().list(q=f"'{outside}' in parents").execute()["files"] == []
    fake.drive.delete(library)
    assert file_id not in fake.drive.files


def test_shortcut_carries_its_target_and_cannot_be_downloaded(fake, drive):
    target = fake.drive.add_file("song.mp3", None, b"audio")
    shortcut = fake.drive.add_shortcut("song.mp3", fake.drive.add_folder("Jingles"), target)
    got = drive.files().get(fileId=shortcut, fields="id,mimeType,shortcutDetails,md5Checksum").execute()
    assert got == {"id": shortcut, "mimeType": "application/vnd.google-apps.shortcut",
                   "shortcutDetails": {"targetId": target, "targetMimeType": "audio/mpeg"}}
    with pytest.raises(HttpError) as exc:
        drive.files().get_media(fileId=shortcut).execute()
    assert exc.value.resp.status == 403
    assert error_of(exc.value)["errors"][0]["reason"] == "fileNotDownloadable"


# --- Auth ----------------------------------------------------------------------------------


def test_no_token_or_unknown_token_is_401(fake):
    bare = build("drive", "v3", http=httplib2.Http(timeout=10), static_discovery=False,
                 cache_discovery=False,
                 discoveryServiceUrl=f"{fake.url}/discovery/v1/apis/{{api}}/{{apiVersion}}/rest")
    with pytest.raises(HttpError) as exc:
        bare.files().list().execute()
    assert exc.value.resp.status == 401
    assert error_of(exc.value)["errors"][0]["reason"] == "authError"
    drive = service(fake, "drive", "v3")
    drive.files().list().execute()
    fake.revoke_all()
    with pytest.raises(RefreshError):  # a bare token cannot be refreshed: google-auth gives up
        drive.files().list().execute()


def refreshing_credentials(fake, refresh_token: str) -> Credentials:
    return Credentials(token=None, refresh_token=refresh_token, client_id="id",
                       client_secret="secret", token_uri=fake.url + "/o/oauth2/token",
                       scopes=["https://www.googleapis.com/auth/drive"])


def test_refresh_token_credentials_get_tokens_from_the_fake(fake):
    drive = service(fake, "drive", "v3", refreshing_credentials(fake, fake.issue_refresh_token()))
    drive.files().list().execute()
    assert fake.count("POST", "/o/oauth2/token") == 1
    fake.revoke_all()
    drive.files().list().execute()  # 401, refresh, retry
    assert fake.count("POST", "/o/oauth2/token") == 2
    with pytest.raises(RefreshError):
        service(fake, "drive", "v3", refreshing_credentials(fake, "1//unknown"))


def test_authorization_code_grant_also_gives_a_refresh_token(fake):
    fake.sign_in_as("dana@kol.fm")
    browser = httplib2.Http(timeout=10)
    browser.follow_redirects = False
    resp, _ = browser.request(f"{fake.url}/o/oauth2/auth?redirect_uri=http://app/cb&state=s"
                              "&scope=openid+https://www.googleapis.com/auth/drive")
    code = re.search(r"code=([^&]+)", resp["location"])[1]
    resp, body = browser.request(f"{fake.url}/o/oauth2/token", "POST",
                                 body=f"grant_type=authorization_code&code={code}",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    granted = json.loads(body)
    assert granted["scope"] == "openid https://www.googleapis.com/auth/drive"
    drive = service(fake, "drive", "v3", refreshing_credentials(fake, granted["refresh_token"]))
    assert drive.files().list().execute()["files"] == []


# --- Faults ---------------------------------------------------------------------------


def test_injected_429_then_success_with_retries(fake, drive, gmail):
    fake.inject("/drive/v3/files", 429)
    request = drive.files().list()
    request._sleep = lambda seconds: None
    assert request.execute(num_retries=2)["files"] == []
    assert fake.count("GET", "/drive/v3/files") == 2
    fake.inject("/gmail/v1/users/me/messages", 500, times=2)
    with pytest.raises(HttpError) as exc:
        gmail.users().messages().list(userId="me").execute()
    assert exc.value.resp.status == 500
    assert error_of(exc.value)["errors"][0]["reason"] == "backendError"
    fake.inject("/drive/v3/changes", 410)
    with pytest.raises(HttpError) as exc:
        drive.changes().list(pageToken="1").execute()
    assert exc.value.resp.status == 410


def test_injected_delay_trips_the_client_timeout(fake):
    drive = service(fake, "drive", "v3", timeout=0.3)
    fake.inject("/drive/v3/files", 200, delay=1.5)
    with pytest.raises(TimeoutError):
        drive.files().list().execute()
    fake.inject("/drive/v3/files", 200, delay=0.1)  # a status below 400 is only slow
    assert drive.files().list().execute()["files"] == []


# --- Gmail ---------------------------------------------------------------------------------


def ids(gmail, q: str = "", **kwargs) -> list[str]:
    found = gmail.users().messages().list(userId="me", q=q, **kwargs).execute()
    return [m["id"] for m in found.get("messages", [])]


def test_gmail_list_by_query(fake, gmail):
    done_label = fake.gmail.add_label("Radio/Processed")
    mp3 = [("promo.mp3", b"ID3 audio", "audio/mpeg")]
    fresh = fake.gmail.add_message("ads@client.com", "Promo", mp3)
    read = fake.gmail.add_message("ads@client.com", "Old promo", mp3, unread=False)
    plain = fake.gmail.add_message("friend@x.com", "Hello", body_text="hi")
    done = fake.gmail.add_message("ads@client.com", "Done", mp3)
    gmail.users().messages().modify(userId="me", id=done,
                                    body={"addLabelIds": [done_label]}).execute()
    assert set(ids(gmail, "has:attachment")) == {fresh, read, done}
    assert set(ids(gmail, "has:attachment is:unread")) == {fresh, done}
    assert set(ids(gmail, "has:attachment -label:Radio/Processed")) == {fresh, read}
    assert ids(gmail, "label:radio-processed") == [done]
    assert ids(gmail, "from:friend@x.com") == [plain]
    assert set(ids(gmail, "has:attachment newer_than:7d")) == {fresh, read, done}
    assert ids(gmail, 'subject:"old promo" -label:"radio processed"') == [read]
    empty = gmail.users().messages().list(userId="me", q="label:nothing").execute()
    assert empty == {"resultSizeEstimate": 0}  # no "messages" key, like Gmail
    first = gmail.users().messages().list(userId="me", maxResults=3).execute()
    rest = gmail.users().messages().list(userId="me", maxResults=3,
                                         pageToken=first["nextPageToken"]).execute()
    assert len(first["messages"]) == 3 and "nextPageToken" not in rest
    assert {m["id"] for m in first["messages"] + rest["messages"]} == {fresh, read, plain, done}
    partial = gmail.users().messages().list(userId="me", q="is:unread", fields="messages(id)").execute()
    assert partial == {"messages": [{"id": i} for i in ids(gmail, "is:unread")]}


def test_gmail_attachment_ids_change_on_every_get_and_all_keep_working(fake, gmail):
    audio = secrets.token_bytes(5000)
    message_id = fake.gmail.add_message("ads@client.com", "Promo",
                                        [("promo.mp3", audio, "audio/mpeg")], body_text="Play it")
    got = [gmail.users().messages().get(userId="me", id=message_id, format="full").execute()
           for _ in range(2)]
    payload = got[0]["payload"]
    headers = {h["name"]: h["value"] for h in payload["headers"]}
    assert headers["From"] == "ads@client.com" and headers["Subject"] == "Promo" and headers["Date"]
    assert payload["mimeType"] == "multipart/mixed"
    text, attachment = payload["parts"]
    assert text["mimeType"] == "text/plain" and text["body"]["data"]
    assert attachment["filename"] == "promo.mp3" and attachment["body"]["size"] == 5000
    attachment_ids = [g["payload"]["parts"][1]["body"]["attachmentId"] for g in got]
    assert attachment_ids[0] != attachment_ids[1]
    for attachment_id in attachment_ids:
        body = gmail.users().messages().attachments().get(
            userId="me", messageId=message_id, id=attachment_id).execute()
        assert base64.urlsafe_b64decode(body["data"]) == audio and body["size"] == 5000
    with pytest.raises(HttpError) as exc:
        gmail.users().messages().get(userId="me", id="0000").execute()
    assert exc.value.resp.status == 404


def test_gmail_labels_create_list_and_modify(fake, gmail):
    label = gmail.users().labels().create(userId="me", body={"name": "Radio/Processed"}).execute()
    assert re.fullmatch(r"Label_\d+", label["id"]) and label["name"] == "Radio/Processed"
    with pytest.raises(HttpError) as exc:
        gmail.users().labels().create(userId="me", body={"name": "Radio/Processed"}).execute()
    assert exc.value.resp.status == 409
    listed = gmail.users().labels().list(userId="me").execute()["labels"]
    assert {"id": label["id"], "name": "Radio/Processed"}.items() <= next(
        entry for entry in listed if entry["id"] == label["id"]).items()
    assert "INBOX" in {entry["id"] for entry in listed}
    message_id = fake.gmail.add_message("a@b.c", "Promo")
    assert fake.gmail.labels_of(message_id) == {"INBOX", "UNREAD"}
    result = gmail.users().messages().modify(
        userId="me", id=message_id,
        body={"addLabelIds": [label["id"]], "removeLabelIds": ["UNREAD"]}).execute()
    assert set(result["labelIds"]) == {"INBOX", label["id"]}
    assert fake.gmail.labels_of(message_id) == {"INBOX", "Radio/Processed"}
    with pytest.raises(HttpError) as exc:
        gmail.users().messages().modify(userId="me", id=message_id,
                                        body={"addLabelIds": ["Label_999"]}).execute()
    assert exc.value.resp.status == 400


def test_one_file_refused_for_download_while_its_metadata_and_the_others_serve(fake, drive):
    flagged = fake.drive.add_file("flagged.mp3", None, b"ID3 flagged")
    other = fake.drive.add_file("other.mp3", None, b"ID3 other")
    fake.drive.fail_downloads(flagged, "cannotDownloadAbusiveFile")
    for _ in range(2):  # every attempt, as long as Drive keeps the flag
        with pytest.raises(HttpError) as exc:
            download(drive, flagged, chunksize=1024)
        assert exc.value.resp.status == 403
        error = error_of(exc.value)
        assert error["code"] == 403 and error["errors"][0]["domain"] == "global"
        assert error["errors"][0]["reason"] == "cannotDownloadAbusiveFile"
        assert "malware or spam" in error["errors"][0]["message"]
    assert drive.files().get(fileId=flagged, fields="id,md5Checksum").execute()["id"] == flagged
    assert download(drive, other, chunksize=1024) == b"ID3 other"
    fake.drive.fail_downloads(other, "notFound")
    with pytest.raises(HttpError) as exc:
        download(drive, other, chunksize=1024)
    detail = error_of(exc.value)["errors"][0]
    assert (exc.value.resp.status, detail["reason"], detail["location"]) == (404, "notFound", "fileId")
    assert detail["message"] == f"File not found: {other}."
    fake.drive.allow_downloads(flagged)
    assert download(drive, flagged, chunksize=1024) == b"ID3 flagged"
