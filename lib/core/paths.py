"""What a visitor may name on the server, and the intake of files read on their behalf.

- `data_path(text, kind)`: a typed path (absolute, relative to the project, or `<root>/…` as
  `shown` writes it), resolved fully (symlinks included) and accepted only
  when the resolved path lies inside an allowed root (`LENS_DATA_ROOTS`, roots resolved too).
  `..` components are refused outright; devices, FIFOs and sockets are refused; a path outside
  the roots gets the same message whether or not it exists.
- `contained(path, base)`: the same containment for paths read from files (COCO `file_name`,
  entries of a folder walk), against a folder or the roots.
- `shown(path)`: a server path as a visitor sees it (relative to the project or a root).
- `read_json(...)`: JSON with a size cap (`LENS_MAX_JSON_MB`), errors as `DatasetError`.
- `extract_zip(data)`: an uploaded zip unpacked into the scratch area, streamed, with limits
  on entries, total size and compression ratio, into a temporary folder renamed into place
  only when complete (keyed by content, so a rerun reuses it).
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import shutil
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

from lib.core import scratch, settings
from lib.core.errors import ArchiveError, DatasetError, PathNotAllowedError

MAX_NAME = 255        # bytes of one path component, as most file systems allow
MAX_PATH = 1024       # characters of an archive entry's name


def data_roots() -> list[Path]:
    """The allowed roots, resolved (a root may itself be a link, to a shared disk say)."""
    out = []
    for root in settings.get().data_roots:
        try:
            out.append(root.resolve())
        except (OSError, RuntimeError):
            continue
    return out


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _refuse_outside(text: str) -> PathNotAllowedError:
    roots = ", ".join(shown(r) for r in data_roots()) or "none"
    return PathNotAllowedError(f"'{text}' is not inside the folders Lens may read ({roots}).",
                               "An operator can allow another folder with LENS_DATA_ROOTS.")


def data_path(text: str, kind: str = "any") -> Path:
    """Resolve a user-typed path inside the allowed roots; `kind` is file, dir or any.

    Raises `PathNotAllowedError` for '..', paths (or links) leading outside the roots, and
    anything that is not a regular file or folder; the message for a path outside the roots
    is the same whether it exists or not.
    """
    text = (text or "").strip()
    if not text:
        raise PathNotAllowedError("No path given.", "Type a folder or file path on the server.")
    if "\x00" in text or len(text) > 4096:
        raise PathNotAllowedError("That is not a valid path.")
    raw = _from_root_name(text) or Path(text).expanduser()
    if ".." in raw.parts:
        raise PathNotAllowedError(f"'{text}' contains '..'.", "Give the path without '..'.")
    if not raw.is_absolute():
        raw = settings.PROJECT_ROOT / raw
    try:
        resolved = raw.resolve()
    except (OSError, RuntimeError):   # a link loop, say
        raise _refuse_outside(text) from None
    if not _under(resolved, data_roots()):
        raise _refuse_outside(text)
    return _check_kind(resolved, text, kind)


def _from_root_name(text: str) -> Path | None:
    """`<name>/rest` (how `shown` writes a path under an allowed root) as that root / rest."""
    m = re.fullmatch(r"<([^<>/]+)>(?:/(.*))?", text)
    if not m:
        return None
    for root in settings.get().data_roots:
        if root.name == m.group(1):
            return root / (m.group(2) or "")
    return None


def _check_kind(path: Path, text: str, kind: str) -> Path:
    try:
        mode = path.stat().st_mode
    except OSError:
        raise PathNotAllowedError(f"'{text}' does not exist.", "Check the path.") from None
    if stat.S_ISDIR(mode):
        if kind == "file":
            raise PathNotAllowedError(f"'{text}' is a folder, not a file.")
    elif stat.S_ISREG(mode):
        if kind == "dir":
            raise PathNotAllowedError(f"'{text}' is a file, not a folder.")
    else:
        raise PathNotAllowedError(f"'{text}' is not a regular file or folder (a device, pipe "
                                  "or socket) and is not read.")
    return path


def contained(path: str | Path, base: Path | None = None) -> Path | None:
    """`path` resolved, when it lies inside `base` (resolved) or, without one, inside the
    allowed roots; None otherwise. For paths found in files or folder walks."""
    try:
        resolved = Path(path).resolve()
        roots = [base.resolve()] if base is not None else data_roots()
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved if _under(resolved, roots) else None


def shown(text: str | Path) -> str:
    """A server path (or a message holding one) as a visitor sees it: relative to the project
    (`checkpoints/demo-x`), else to Lens' cache, the model caches, an allowed root or the
    home folder (`<cache>/…`, `<hub cache>/…`, `<shared>/…`, `~/…`). A public demo never maps
    the server's disk for its visitors; command lines, logs and operators see full paths."""
    out = str(text)
    for prefix, name in _shown_prefixes():   # a whole prefix only: /srv/lens, not /srv/lens2
        out = re.sub(re.escape(prefix) + r"(?![\w.-])(/?)",
                     lambda m, n=name: (n + m.group(1)) if n else ("" if m.group(1) else "."),
                     out)
    return out


def _shown_prefixes() -> list[tuple[str, str]]:
    """(absolute prefix, what replaces it), longest first so the most specific wins."""
    home = Path.home()
    named = {settings.PROJECT_ROOT: "", settings.cache_dir(): "<cache>",
             Path(os.environ.get("HF_HOME", home / ".cache" / "huggingface")): "<hub cache>",
             Path(os.environ.get("TORCH_HOME", home / ".cache" / "torch")): "<torch cache>",
             home: "~"}
    named.update({root: f"<{root.name}>" for root in settings.get().data_roots
                  if root not in named})
    pairs = []
    for path, name in named.items():
        for variant in {str(path), str(_resolved(path))}:
            if len(variant) > 1:
                pairs.append((variant, name))
    return sorted(pairs, key=lambda p: -len(p[0]))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def safe_relative(name: Any) -> bool:
    """True for a relative path text with no '..', no drive and no NUL (file names in JSON)."""
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > MAX_PATH:
        return False
    p = Path(name.replace("\\", "/"))
    return not p.is_absolute() and ".." not in p.parts and ":" not in p.parts[0]


# -- JSON -------------------------------------------------------------------------------------

def read_json(source: bytes | str | Path, name: str | None = None) -> Any:
    """Parse JSON from bytes or a file, refusing files over `LENS_MAX_JSON_MB`."""
    limit = int(settings.get().max_json_mb * 2**20)
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            if not path.is_file():
                raise DatasetError(f"'{name}' is not a regular file.")
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise DatasetError(f"Cannot read '{name}' ({exc.strerror or 'read error'}).") from None
    else:
        data, name = bytes(source), name or "the upload"
    if len(data) > limit:
        raise DatasetError(f"'{name}' is larger than {limit / 2**20:.0f} MB.",
                           "Raise LENS_MAX_JSON_MB if it is genuine.")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f"'{name}' is not valid JSON ({str(exc)[:120]}).") from None


# -- zip archives -----------------------------------------------------------------------------

def _check_member_name(name: str) -> None:
    text = name.replace("\\", "/")
    if not text or "\x00" in text or len(text) > MAX_PATH:
        raise ArchiveError("The archive holds an entry with an invalid name.")
    p = Path(text)
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise ArchiveError(f"The archive holds an unsafe path: '{text[:200]}'.",
                           "Zip the folder itself, with relative paths only.")
    if any(len(part.encode("utf-8", "replace")) > MAX_NAME for part in p.parts):
        raise ArchiveError(f"The archive holds a name longer than {MAX_NAME} bytes.")


def _extract_into(archive: zipfile.ZipFile, dest: Path) -> None:
    s = settings.get()
    members = archive.infolist()
    if len(members) > s.max_zip_entries:
        raise ArchiveError(f"The archive has {len(members)} entries, over the limit of "
                           f"{s.max_zip_entries}.", "Split it, or raise LENS_MAX_ZIP_ENTRIES.")
    budget = int(s.max_zip_mb * 2**20)
    declared = sum(m.file_size for m in members)
    if declared > budget:
        raise ArchiveError(f"The archive unpacks to {declared / 2**20:.0f} MB, over the limit "
                           f"of {s.max_zip_mb:.0f} MB.", "Raise LENS_MAX_ZIP_MB if genuine.")
    written = 0
    for m in members:
        _check_member_name(m.filename)
        rel = Path(m.filename.replace("\\", "/"))
        if rel.parts and rel.parts[0] == "__MACOSX":
            continue
        target = dest / rel
        if m.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if m.compress_size and m.file_size / m.compress_size > s.max_zip_ratio:
            ratio = m.file_size / m.compress_size
            raise ArchiveError(f"'{m.filename[:200]}' is compressed {ratio:.0f}×, over the "
                               f"limit of {s.max_zip_ratio:.0f}× (a zip bomb?).")
        target.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with archive.open(m) as src, target.open("wb") as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                written += len(chunk)
                if size > m.file_size or written > budget:
                    raise ArchiveError(f"'{m.filename[:200]}' unpacks to more than its header "
                                       "says, or the archive to more than the limit.")
                if m.compress_size and size > s.max_zip_ratio * m.compress_size + (1 << 20):
                    raise ArchiveError(f"'{m.filename[:200]}' is compressed over "
                                       f"{s.max_zip_ratio:.0f}× (a zip bomb?).")
                out.write(chunk)


def _zip_errors() -> tuple[type[BaseException], ...]:
    return (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
            EOFError, zlib.error, lzma.LZMAError, OSError, ValueError, UnicodeError)


def extract_zip(data: bytes) -> Path:
    """Unpack an uploaded zip into the scratch area (once per content) and return its folder;
    a zip of a single folder returns that folder. Every problem is an `ArchiveError`."""
    digest = hashlib.sha256(data).hexdigest()[:32]
    final = scratch.root() / f"zip-{digest}"
    if not final.is_dir():
        tmp = scratch.new_dir("zip-partial-")
        try:
            try:
                archive = zipfile.ZipFile(io.BytesIO(data))
            except _zip_errors():
                raise ArchiveError("The upload is not a valid zip archive.",
                                   "Create it with a zip tool and upload it again.") from None
            with archive:
                _extract_into(archive, tmp)
        except ArchiveError:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except _zip_errors() as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            detail = getattr(exc, "strerror", None) or str(exc).split(":")[0][:120]
            raise ArchiveError(f"The archive is corrupt or cannot be unpacked ({detail}).",
                               "Create it again and upload it.") from None
        try:
            os.rename(tmp, final)
        except OSError:   # another session finished the same archive first
            shutil.rmtree(tmp, ignore_errors=True)
        scratch.prune()
    scratch.touch(final)
    subdirs = [p for p in final.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    files = [p for p in final.iterdir() if p.is_file()]
    # A zip of one folder holding the real content: step into it.
    if len(subdirs) == 1 and not files and any(q.is_dir() for q in subdirs[0].iterdir()):
        return subdirs[0]
    return final


def tidy_wandb_dir(root: Path) -> None:
    """Keep run logs and files; drop debug logs, temp folders and the latest-run link."""
    for path in sorted(Path(root).rglob("*"), key=lambda p: -len(p.parts)):
        if path.is_symlink():
            path.unlink()
        elif path.name in ("logs", "tmp") and path.is_dir():
            shutil.rmtree(path)
        elif path.suffix == ".log" and path.exists() and "wandb" in path.parts:
            path.unlink()
