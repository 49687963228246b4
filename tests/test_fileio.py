"""Atomic writes: the old file or the whole new one, never half; the mode a new file gets;
what a killed writer leaves behind is found."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from weaktube.fileio import atomic_path, atomic_write_json, temporaries_of


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_write_replaces_and_gets_the_mode_of_a_new_file(tmp_path, umask):
    out = tmp_path / "sub" / "results.json"
    old = os.umask(umask)
    try:
        atomic_write_json(out, {"a": 1})
        atomic_write_json(out, {"a": 2})
    finally:
        os.umask(old)
    assert json.loads(out.read_text()) == {"a": 2}
    # not mkstemp's owner-only 0600: what open() makes under the umask (0644 / 0664)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert temporaries_of(out) == []


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "detections.json"
    atomic_write_json(out, {"old": True})
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text('{"half": ')
        raise RuntimeError("writer failed")
    assert json.loads(out.read_text()) == {"old": True}
    assert temporaries_of(out) == []


def test_a_killed_writer_leaves_a_temporary_that_is_found(tmp_path):
    out = tmp_path / "last.pt"
    out.write_bytes(b"complete")
    code = ("import os, signal, sys\n"
            "from weaktube.fileio import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], check=False)
    assert proc.returncode == -9
    assert out.read_bytes() == b"complete"
    left = temporaries_of(out)
    assert len(left) == 1 and left[0].read_bytes() == b"half"
    assert temporaries_of(tmp_path / "other.pt") == []  # another file's name: not its own
