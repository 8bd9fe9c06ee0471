"""Generated directory trees, and their content as comparable values.

A tree holds what backup and sync tools trip on: nested directories, random files of assorted
sizes (a few MiB in all), an empty file, names with spaces and non-ASCII characters, and
optionally a symbolic link.
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB

# Relative path -> size. Sizes straddle the boundaries clients care about (Coffre's 64 KiB inline
# limit, restic's chunker, the clients' multipart thresholds stay above these).
TREE_FILES = {
    "README.txt": 1_234,
    "empty.dat": 0,
    "docs/report 2024.pdf": 300 * KIB + 7,
    "docs/notes/été – naïve.txt": 4_321,
    "docs/notes/日本語のファイル.txt": 65_536,
    "photos/2024/img_0001.jpg": 1 * MIB + 17,
    "photos/2024/img_0002.jpg": 2 * MIB - 3,
    "photos/2023/deep/er/still/img.raw": 700 * KIB,
    "src/main.rs": 9_999,
    "src/lib/mod.rs": 65_537,
}


def random_bytes(size: int, rng: random.Random) -> bytes:
    return rng.randbytes(size)


def make_tree(root: Path, seed: int = 1, with_symlink: bool = False) -> Path:
    rng = random.Random(seed)
    for relative, size in TREE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random_bytes(size, rng))
    (root / "empty dir").mkdir(exist_ok=True)
    if with_symlink:
        os.symlink("docs/report 2024.pdf", root / "latest-report")
    return root


def tree_content(root: Path, with_dirs: bool = True) -> dict[str, str]:
    """Relative path -> `file <sha256> <size>`, `link -> <target>` or `dir`.

    Object stores keep no directories: compare with `with_dirs=False` after a round trip through
    one.
    """
    content: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        base = Path(directory)
        for name in dirnames:
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                content[relative] = f"link -> {os.readlink(path)}"
            elif with_dirs:
                content[relative] = "dir"
        for name in filenames:
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                content[relative] = f"link -> {os.readlink(path)}"
            else:
                data = path.read_bytes()
                content[relative] = f"file {hashlib.sha256(data).hexdigest()} {len(data)}"
    return dict(sorted(content.items()))


def file_sizes(root: Path) -> dict[str, int]:
    """Relative path -> size of every regular file (what an object listing shows)."""
    return {
        path.relative_to(root).as_posix(): path.stat().st_size
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
