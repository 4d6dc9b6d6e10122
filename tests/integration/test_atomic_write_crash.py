"""An atomic write killed at any moment leaves the old content or the new (detector/files.py).

A child process rewrites one file over and over with two different payloads
of a few MiB, saying after each write how many it finished; it is killed with
SIGKILL after a different number of writes each round, so the kill lands
inside a write, an fsync or a rename. The file must then hold one payload
whole, and the temporary file it may leave is cleared by
``remove_stale_temporaries``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detector.files import remove_stale_temporaries

_SIZE = 4 << 20  # large enough that a write takes a while, so kills land mid-write
_WRITER = f"""
import sys
from pathlib import Path
from detector.files import write_atomically

path = Path(sys.argv[1])
payloads = (b"a" * {_SIZE}, b"b" * {_SIZE})
count = 0
while True:
    write_atomically(path, payloads[count % 2])
    count += 1
    print(count, flush=True)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("writes_before_kill", [1, 2, 3, 5, 8])
def test_a_killed_writer_leaves_one_payload_whole(tmp_path: Path, writes_before_kill: int) -> None:
    path = tmp_path / "checkpoint.json"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert writer.stdout is not None
        for _ in range(writes_before_kill):
            assert writer.stdout.readline(), "the writer stopped before it was killed"
    finally:
        writer.kill()
        writer.wait(timeout=30)
    content = path.read_bytes()
    assert content in (b"a" * _SIZE, b"b" * _SIZE)
    remove_stale_temporaries(path)
    assert sorted(tmp_path.iterdir()) == [path]
