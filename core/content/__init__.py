"""Game content: assets with immutable versions in object storage, release channels that
point at versions, resumable (tus 1.0) uploads and ranged downloads (docs/content.md)."""
