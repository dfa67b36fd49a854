"""A verified on-disk cache: build a folder once, check it on every load, never load a broken one.

Turning the course model's 4-bit GGUF file into float32 takes about 30 s on two cores, so
:mod:`lora_edu.models` does it once and keeps the result as safetensors in a cache folder
(``$LORA_EDU_CACHE``, default ``~/.cache/lora_edu``); every later load takes a second or two.
A cache is only worth it if it can be trusted, so :func:`cached_folder`:

    build(tmp)                    write the files into an empty temporary folder beside the target
    tmp/manifest.json             record a stamp (what it was made from) and each file's size and SHA-256
    os.replace(tmp, target)       rename into place in one step: a reader sees no cache or a complete one

and on every load checks the manifest, the stamp, the sizes and the sums: a partial, corrupt or
out-of-date cache is moved aside and rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "LORA_EDU_CACHE"
_CACHE_FORMAT = 1


def cache_dir() -> Path:
    """The folder holding dequantized model caches: ``$LORA_EDU_CACHE`` or ``~/.cache/lora_edu``."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lora_edu"
    )
    return Path(root).expanduser()


def cached_folder(target: Path, build: Callable[[Path], None], stamp: dict) -> Path:
    """Return ``target`` once it holds a complete, verified copy; build it first if it does not.

    ``build(folder)`` writes the files into an empty temporary folder beside ``target``; the folder
    gets a manifest (``stamp`` plus each file's size and SHA-256) and is then renamed to
    ``target`` in one step, so a reader sees either no cache or a complete one. An existing cache
    whose manifest, stamp, sizes or sums do not match is moved aside and rebuilt.
    """
    from lora_edu.models import ModelLoadError  # models imports this module: import it here, not at the top

    target = Path(target)
    problem = _verify(target, stamp)
    if problem is None:
        return target
    if target.exists():
        print(f"The model cache at {target} is unusable ({problem}); rebuilding it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        files = {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.iterdir())
            if p.is_file()
        }
        if not files:
            raise ModelLoadError(f"Building the cache for {target.name} wrote no files")
        manifest = {"format": _CACHE_FORMAT, "stamp": stamp, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if target.exists():
            stale = target.parent / f".{target.name}.stale-{uuid.uuid4().hex[:8]}"
            os.replace(target, stale)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished first; use its cache if it is good.
            if _verify(target, stamp) is not None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _verify(folder: Path, stamp: dict) -> str | None:
    """Why the cache in ``folder`` cannot be used, or None when it is complete and intact."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return "no manifest" if folder.exists() else "missing"
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    if manifest.get("format") != _CACHE_FORMAT or manifest.get("stamp") != stamp:
        return "made from another source or by another version"
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != info["bytes"]:
            return f"{name} has the wrong size"
        if _sha256(path) != info["sha256"]:
            return f"{name} is corrupt (checksum mismatch)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()
