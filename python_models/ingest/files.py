"""Finding event files and telling what they hold before DuckDB reads them.

Every check here turns a file DuckDB would choke on (or misread) into one clear IngestError
that names the file: a compressed file under a plain name, an archive, a Parquet file named
.csv, a header that is not UTF-8 or names a column twice.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("csv", "parquet", "jsonl")
FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
# Text formats may also come gzip-compressed (events.csv.gz); DuckDB reads those directly.
COMPRESSED_SUFFIXES = (".gz",)
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PAR1", "parquet"),
    (b"PK\x03\x04", "zip archive"),
    (b"(\xb5/\xfd", "zstd-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"\xfd7zXZ", "xz-compressed"),
)
_HEADER_LIMIT = 1 << 20  # a header line longer than 1 MiB is not a header


class IngestError(ValueError):
    """A file cannot be loaded at all; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class FileInfo:
    path: Path
    fmt: str
    sha256: str
    size: int
    compression: str | None  # "gzip" or None

    @property
    def is_empty(self) -> bool:
        return self.size == 0


def _format_of(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return FORMATS_BY_SUFFIX.get(suffixes[-1]) if suffixes else None


def detect_format(path: Path) -> str:
    fmt = _format_of(path)
    if fmt is None:
        raise IngestError(
            f"{path}: cannot tell the format from the extension {path.suffix!r}; name it "
            f"{', '.join(FORMATS_BY_SUFFIX)} (optionally + .gz) or pass --format "
            f"{{{','.join(FORMATS)}}}"
        )
    return fmt


def expand_paths(paths: Iterable[str | Path], fmt: str | None) -> list[Path]:
    """Files to load: a directory gives its event files (recursively), sorted."""
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and (found_fmt := _format_of(p)) is not None
                and (fmt is None or found_fmt == fmt)
            )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise IngestError(f"{path}: no such file or directory")
    return files


def _sha256_and_size(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def file_sha256(path: Path) -> str:
    return _sha256_and_size(path)[0]


def inspect_file(path: Path, fmt: str) -> FileInfo:
    """Hash the file and check its first bytes against the format it is loaded as."""
    try:
        sha, size = _sha256_and_size(path)
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    found = next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    compression = None
    if fmt == "parquet":
        if size and found != "parquet":
            raise IngestError(
                f"{path}: not a Parquet file (no PAR1 signature"
                + (f"; it looks {found}" if found else "")
                + "); pass --format csv or jsonl if it is text"
            )
    elif found == "gzip":
        compression = "gzip"
    elif found == "parquet":
        raise IngestError(
            f"{path}: this is a Parquet file, not {fmt}; name it .parquet or pass --format parquet"
        )
    elif found is not None:
        raise IngestError(f"{path}: the file is a {found}; unpack it and load the {fmt} inside")
    return FileInfo(path=path, fmt=fmt, sha256=sha, size=size, compression=compression)


def _first_line(info: FileInfo) -> bytes:
    opener = gzip.open if info.compression == "gzip" else open
    try:
        with opener(info.path, "rb") as handle:
            line = handle.readline(_HEADER_LIMIT)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{info.path}: cannot decompress the file ({exc})") from None
    return line


def text_is_empty(info: FileInfo) -> bool:
    """True for a text file with no content at all (0 bytes, or a compressed empty file)."""
    if info.is_empty:
        return True
    return info.compression is not None and _first_line(info) == b""


def csv_header(info: FileInfo) -> list[str]:
    """The header's column names, decoded strictly as UTF-8 (a BOM is dropped)."""
    raw = _first_line(info)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{info.path}: the header line is not UTF-8 (byte 0x{raw[exc.start]:02x} at "
            f"position {exc.start + 1}); re-export the file as UTF-8"
        ) from None
    if not text.strip():
        raise IngestError(f"{info.path}: the first line is blank; a CSV file starts with a header")
    header = next(csv.reader([text.rstrip("\r\n")]), [])
    return header
