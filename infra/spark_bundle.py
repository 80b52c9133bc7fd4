"""The Spark jobs' code as EMR Serverless takes it: ``spark_jobs/entry.py`` as the job's
``entryPoint`` and one zip for ``--py-files`` (``spark_jobs/``, ``core/`` and the pure-Python
``dagster_pipes``), both CDK file assets that ``cdk deploy`` uploads beside the image.

The zip is built at synth time, byte for byte the same for the same sources (sorted
entries, fixed timestamps), so its asset hash changes only when the code does.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import dagster_pipes

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINT = REPO_ROOT / "spark_jobs" / "entry.py"
PACKAGES = ("core", "spark_jobs")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's first date


def _sources() -> list[tuple[str, Path]]:
    found = [
        (path.relative_to(REPO_ROOT).as_posix(), path)
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
    ]
    pipes = Path(dagster_pipes.__file__).resolve().parent
    found += [(f"dagster_pipes/{p.relative_to(pipes).as_posix()}", p) for p in pipes.rglob("*.py")]
    return sorted(found)


def build_bundle(out_dir: Path | None = None) -> Path:
    """Write ``stride_spark.zip`` under ``out_dir`` (a fresh temporary folder by default)."""
    target = (out_dir or Path(tempfile.mkdtemp(prefix="stride-spark-"))) / "stride_spark.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, path in _sources():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, path.read_bytes())
    return target
