"""Folders a user may name by path on the server (evaluation sets, run folders)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PathNotAllowedError(ValueError):
    """A typed path outside the allowed roots; the message says how to allow it."""


def _root_texts() -> list[str]:
    return [p for p in os.environ.get("LENS_DATA_ROOTS", str(PROJECT_ROOT.parent))
            .split(os.pathsep) if p]


def data_roots() -> list[Path]:
    """LENS_DATA_ROOTS (os.pathsep-separated); default: the folder holding the project, which
    includes ../shared."""
    return [Path(p).expanduser().resolve() for p in _root_texts()]


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def data_path(text: str) -> Path:
    """Resolve a user-typed path; only paths under `data_roots()` are read.

    A path counts as inside when its resolved form is, or when its lexical form ('..'
    collapsed, symlinks kept) is: a symlink an administrator placed inside a root (say
    `../shared` linked to a shared disk) stays readable, while '..' cannot escape.
    """
    raw = Path(text.strip()).expanduser()
    path = raw.resolve()
    lexical_roots = [Path(os.path.abspath(Path(p).expanduser())) for p in _root_texts()]
    if not (_under(path, data_roots())
            or _under(Path(os.path.abspath(raw)), lexical_roots + data_roots())):
        raise PathNotAllowedError(f"'{text}' is outside the folders Lens may read "
                                  f"({', '.join(map(str, data_roots()))}); set LENS_DATA_ROOTS "
                                  "to allow it.")
    return path


class ArchiveError(ValueError):
    """An uploaded archive that cannot be unpacked safely."""


def safe_extract_zip(data: bytes, dest: Path, max_bytes: int = 2 * 2**30) -> Path:
    """Extract an uploaded zip inside `dest`, refusing absolute paths, '..' and bombs."""
    import io
    import zipfile
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ArchiveError("The upload is not a valid zip archive.") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > max_bytes:
            raise ArchiveError(f"The archive unpacks to more than {max_bytes / 2**30:.0f} GB.")
        root = dest.resolve()
        for m in members:
            target = (root / m.filename).resolve()
            if root not in target.parents or ".." in Path(m.filename).parts:
                raise ArchiveError(f"The archive holds an unsafe path: '{m.filename}'.")
            if m.filename.startswith("__MACOSX/"):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(m))
    subdirs = [p for p in root.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    files = [p for p in root.iterdir() if p.is_file()]
    # A zip of one folder holding the class folders: step into it.
    if len(subdirs) == 1 and not files and any(q.is_dir() for q in subdirs[0].iterdir()):
        return subdirs[0]
    return root
