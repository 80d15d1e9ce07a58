"""The station's Drive folder tree, kept in memory during a sync and mirrored in DriveFolder.

What real Drive does, and what the tree makes of it:
- Trashing a folder trashes everything beneath it: the folder reads `trashed` and
  `explicitlyTrashed`, its descendants `trashed` only ("recursively trashed from a parent
  folder"). Restoring the folder restores what was trashed with it, not what had been
  trashed on its own. The changes feed reports the folder; the descendants may or may not
  come as changes of their own. So a folder records only its own (explicit) trash and a
  chain through a trashed folder is not in the library: that holds either way.
- A folder moved or restored into the library is reported alone: the sync crawls it.
- Legacy files may have several parents, in no particular order: in the library if any is.
- Any name may contain `/`: stored paths escape it (join_path / split_path).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from django.utils.translation import gettext_lazy as _

from library.models import DriveFolder

FOLDER_MIME = "application/vnd.google-apps.folder"
# A shortcut is a file of its own (one parent, no bytes) with shortcutDetails {targetId,
# targetMimeType}; the target's type is a snapshot taken when the shortcut was made.
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
SHORTCUT_TO_AUDIO = _("shortcuts are not followed: put the audio file itself (or a copy) in the "
                      "library folder")
SHORTCUT_TARGET_KNOWN = _("shortcut to a file already in the library: it plays from its own place")
SHORTCUT_TO_FOLDER = _("shortcuts are not followed: move the folder itself into the library")


def own_trash(item: dict[str, Any]) -> bool:
    """Trashed on its own, not only because a folder above is (that one says so itself)."""
    return bool(item.get("explicitlyTrashed", item.get("trashed", False)))


def file_stem(name: str) -> str:
    """A Drive name without its extension; a `/` in it is part of the name."""
    suffix = PurePosixPath(name.replace("/", "_")).suffix
    return name[:-len(suffix)] if suffix else name


def join_path(names: Iterable[str]) -> str:
    r"""Names joined by `/`, each `\` and `/` inside a name escaped with `\`: `AC\/DC/Live.mp3`.

    Readable, and no name can be mistaken for a separator (split_path undoes it exactly)."""
    return "/".join(name.replace("\\", "\\\\").replace("/", "\\/") for name in names)


def split_path(path: str) -> list[str]:
    """The names join_path joined."""
    names, current, chars = [], [], iter(path)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == "/":
            names.append("".join(current))
            current = []
        else:
            current.append(ch)
    names.append("".join(current))
    return names


class FolderTree:
    """folder id → DriveFolder, with the path of each folder below its watched root."""

    def __init__(self, station) -> None:
        self.station = station
        self.folders: dict[str, DriveFolder] = {
            f.folder_id: f for f in DriveFolder.objects.filter(station=station)
        }
        self.dirty: dict[str, DriveFolder] = {}

    @property
    def roots(self) -> list[DriveFolder]:
        return [f for f in self.folders.values() if f.is_root]

    def get(self, folder_id: str) -> DriveFolder | None:
        return self.folders.get(folder_id)

    def upsert(self, folder_id: str, name: str, parent_id: str, trashed: bool = False) -> bool:
        """Record a folder as Drive describes it. True when its name/place/trash changed."""
        folder = self.folders.get(folder_id)
        if folder is None:
            folder = DriveFolder(station=self.station, folder_id=folder_id)
            self.folders[folder_id] = folder
        elif (folder.name, folder.parent_id, folder.trashed) == (name, parent_id, trashed):
            return False
        folder.name, folder.parent_id, folder.trashed = name, parent_id, trashed
        self.dirty[folder_id] = folder
        return True

    def pick_parent(self, parents: list[str]) -> str:
        """Of a folder's parents (legacy folders may have several, unordered), the one that
        puts it in the library, else one the tree knows, else the first."""
        for parent in parents:
            if self.chain(parent) is not None:
                return parent
        known = [p for p in parents if p in self.folders]
        return (known or parents or [""])[0]

    def visible(self, folder_id: str) -> bool:
        return self.chain(folder_id) is not None

    def chain(self, folder_id: str) -> list[DriveFolder] | None:
        """Folders from the watched root down to `folder_id`, or None when it is not
        under a root (or under a trashed folder)."""
        chain: list[DriveFolder] = []
        seen: set[str] = set()
        current = self.folders.get(folder_id)
        while current is not None and current.folder_id not in seen:
            if current.trashed:
                return None
            seen.add(current.folder_id)
            chain.append(current)
            if current.is_root:
                return list(reversed(chain))
            current = self.folders.get(current.parent_id)
        return None

    def path_parts(self, chain: list[DriveFolder]) -> list[str]:
        return [f.name for f in chain[1:]]  # below the root

    def descendants(self, folder_id: str) -> set[str]:
        children: dict[str, list[str]] = {}
        for f in self.folders.values():
            children.setdefault(f.parent_id, []).append(f.folder_id)
        found, stack = {folder_id}, [folder_id]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def save(self) -> None:
        """Write changed folders (inside the caller's transaction)."""
        new = [f for f in self.dirty.values() if f.pk is None]
        old = [f for f in self.dirty.values() if f.pk is not None]
        if new:
            DriveFolder.objects.bulk_create(new, batch_size=1000)
        if old:
            DriveFolder.objects.bulk_update(old, ["name", "parent_id", "trashed"], batch_size=1000)
        self.dirty.clear()
