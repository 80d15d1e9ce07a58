"""The station's Drive folder tree, kept in memory during a sync and mirrored in DriveFolder."""

from __future__ import annotations

from library.models import DriveFolder

FOLDER_MIME = "application/vnd.google-apps.folder"


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
