"""The verified on-disk cache: built once, reused, rebuilt (never loaded) when damaged or stale."""

from __future__ import annotations

import json

import pytest

from lora_edu import cache


def _writer(calls):
    def build(folder):
        calls.append(folder)
        (folder / "weights.bin").write_bytes(bytes(range(256)) * 64)
        (folder / "config.json").write_text('{"a": 1}')
    return build


def test_cache_is_built_once_then_reused(tmp_path):
    calls = []
    first = cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 1})
    second = cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 1})
    assert first == second and len(calls) == 1
    manifest = json.loads((first / "manifest.json").read_text())
    assert set(manifest["files"]) == {"weights.bin", "config.json"}
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "no temporary folders left behind"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_manifest", "delete_file", "garble_manifest"])
def test_a_damaged_cache_is_rebuilt_never_loaded(tmp_path, damage, capsys):
    calls = []
    folder = cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 1})
    weights = folder / "weights.bin"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[500] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "delete_manifest":
        (folder / "manifest.json").unlink()
    elif damage == "delete_file":
        weights.unlink()
    else:
        (folder / "manifest.json").write_text("{not json")
    assert cache._verify(folder, {"v": 1}) is not None
    cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 1})
    assert len(calls) == 2
    assert "rebuilding" in capsys.readouterr().out
    assert cache._verify(folder, {"v": 1}) is None
    assert weights.read_bytes() == bytes(range(256)) * 64


def test_cache_from_another_source_is_rebuilt(tmp_path):
    calls = []
    cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 1})
    cache.cached_folder(tmp_path / "m", _writer(calls), {"v": 2})
    assert len(calls) == 2


def test_a_failed_build_leaves_no_cache(tmp_path):
    def broken(folder):
        (folder / "half.bin").write_bytes(b"x" * 10)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cache.cached_folder(tmp_path / "m", broken, {"v": 1})
    assert list(tmp_path.iterdir()) == []


def test_cache_folder_moves_with_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache.cache_dir() == tmp_path / "elsewhere"
