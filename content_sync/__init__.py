"""content_sync: the sync daemon, publishing, and the reference source server.

Fetches signed manifests (protocol eboard/1), verifies them, downloads media by
hash and activates them atomically in the shared SQLite database; reports status
and proof of play back to the source. Never imports Qt or the player.
"""
