"""Publishing: an operator's playlist TOML into media by SHA-256 and a signed manifest,
written to a folder or uploaded to a reference source server."""

from content_sync.publish.build import PublishError, manifest_version_in, prepare, write_to_folder
from content_sync.publish.remote import current_version, upload

__all__ = [
    "PublishError", "current_version", "manifest_version_in", "prepare", "upload",
    "write_to_folder",
]
