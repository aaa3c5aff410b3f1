import os

import pytest

from quietrl.core.io import atomic_write_json, atomic_write_text, read_json


def test_atomic_write_replaces_whole_file(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_json(p, {"x": 2, "y": [1, 2]})
    assert read_json(p) == {"x": 2, "y": [1, 2]}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_interrupted_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    p = tmp_path / "summary.json"
    atomic_write_text(p, "old contents\n")

    def boom(fd):  # the process is interrupted after writing part of the new file, before the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(p, "new " * 100_000)
    assert p.read_text() == "old contents\n"
    assert [f.name for f in tmp_path.iterdir()] == ["summary.json"]  # no temporary left behind


def test_killed_writer_leaves_previous_file_intact(tmp_path):
    """A writer killed with SIGKILL in the middle of a large write: the old file survives."""
    import subprocess
    import sys
    import textwrap

    p = tmp_path / "big.bin"
    atomic_write_text(p, "previous")
    code = textwrap.dedent(f"""
        import os, quietrl.core.io as io
        real = os.fsync
        def die(fd):
            os.kill(os.getpid(), 9)
        os.fsync = die
        io.atomic_write_bytes({str(p)!r}, b"x" * 5_000_000)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert r.returncode == -9
    assert p.read_text() == "previous"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    p = tmp_path / "report.html"
    atomic_write_text(p, "<html></html>")
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)
