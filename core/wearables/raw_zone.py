"""The lake's raw zone: original files (audio recordings) kept as uploaded, content-addressed.

The lake root is a local folder or an ``s3://`` URI; pyarrow's filesystem layer writes
to either with the same code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyarrow import fs


def lake_filesystem(lake_root: str) -> tuple[fs.FileSystem, str]:
    """The filesystem of the lake root and the root's path inside it."""
    if "://" in lake_root:
        return fs.FileSystem.from_uri(lake_root)
    return fs.LocalFileSystem(), str(Path(lake_root).resolve())


def store_raw_file(lake_root: str, relative: str, source: Path) -> str:
    """Copy ``source`` to ``<lake_root>/raw/<relative>`` (no-op if present); returns its URI."""
    filesystem, root = lake_filesystem(lake_root)
    target = f"{root}/raw/{relative}"
    if filesystem.get_file_info(target).type == fs.FileType.File:
        return _uri(lake_root, root, target)
    filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
    tmp = f"{target}.partial"
    with source.open("rb") as src, filesystem.open_output_stream(tmp) as out:
        shutil.copyfileobj(src, out, length=1 << 20)
    filesystem.move(tmp, target)
    return _uri(lake_root, root, target)


def _uri(lake_root: str, root: str, target: str) -> str:
    if "://" in lake_root:
        return lake_root.rstrip("/") + target[len(root) :]
    return Path(target).as_uri()
