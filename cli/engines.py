"""The JVM engines of the local stack: their jars, declared in ``engines/<name>/pom.xml``.

Apache Kafka's broker and the Delta Lake / S3 jars that Spark loads are plain Maven
dependencies. ``stride engines fetch`` (run by ``scripts/setup.sh`` and ``scripts/test.sh``)
copies each declaration's runtime dependencies from Maven Central into the git-ignored
``.engines/<name>/`` with ``mvn dependency:copy-dependencies``; a stamp holding the pom's
SHA-256 makes a second fetch a no-op until the pom changes. The services then run ``java``
on those jars, so nothing is downloaded at start-up and every test stack shares one copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from cli.stack import Reporter, StackError
from core.platform.config import REPO_ROOT

DECLARATIONS_DIR = REPO_ROOT / "engines"
ENGINES_DIR = Path(os.environ.get("STRIDE_ENGINES_DIR", REPO_ROOT / ".engines"))
STAMP = ".pom.sha256"


def engine_names() -> list[str]:
    return sorted(p.parent.name for p in DECLARATIONS_DIR.glob("*/pom.xml"))


def engine_dir(name: str) -> Path:
    return ENGINES_DIR / name


def _pom(name: str) -> Path:
    pom = DECLARATIONS_DIR / name / "pom.xml"
    if not pom.exists():
        raise StackError(f"unknown engine {name!r}; known: {', '.join(engine_names())}")
    return pom


def _pom_digest(name: str) -> str:
    return hashlib.sha256(_pom(name).read_bytes()).hexdigest()


def is_fetched(name: str) -> bool:
    stamp = engine_dir(name) / STAMP
    return stamp.exists() and stamp.read_text().strip() == _pom_digest(name)


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on PATH (Java 17 or newer)."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def fetch(name: str, report: Reporter = print) -> Path:
    """Copy the engine's runtime jars into ``.engines/<name>/`` (a no-op when up to date)."""
    target = engine_dir(name)
    if is_fetched(name):
        report(f"{name}: jars up to date in {target}")
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "mvn not found: install Apache Maven (Debian: apt-get install maven) and Java 17"
        )
    report(f"{name}: fetching jars from Maven Central ({_pom(name).relative_to(REPO_ROOT)})")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(  # noqa: S603 - fixed arguments, our own pom
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(_pom(name)),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        lines = (result.stdout + result.stderr).strip().splitlines()
        raise StackError(
            f"{name}: Maven could not fetch the jars (exit {result.returncode}):\n"
            + "\n".join([line for line in lines if "ERROR" in line][:15])
            + "\nCheck that Maven Central is reachable, then run `stride engines fetch` again."
        )
    (staging / STAMP).write_text(_pom_digest(name) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    jars = len(list(target.glob("*.jar")))
    size = sum(p.stat().st_size for p in target.glob("*.jar")) / 1e6
    report(f"{name}: {jars} jars, {size:.0f} MB in {target}")
    return target


def jars(name: str) -> list[Path]:
    """The engine's jars; a clear error when ``stride engines fetch`` has not run."""
    if not is_fetched(name):
        raise StackError(
            f"the {name} jars are missing or out of date in {engine_dir(name)}: "
            "run `bash scripts/setup.sh` (or `.venv/bin/stride engines fetch`)"
        )
    return sorted(engine_dir(name).glob("*.jar"))


def classpath(name: str) -> str:
    return os.pathsep.join(str(p) for p in jars(name))
