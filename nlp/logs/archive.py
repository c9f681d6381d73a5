"""Attachment bytes to text, safely: plain, `.gz`, `.zip` and `.tar(.gz)`, capped.

Split out of nlp.logs.mining so the untrusted-archive handling (caps against gzip/zip bombs,
nested and encrypted members) lives apart from event finding and template mining.

Every cap here is per log, so the caller also holds a per-message budget
(`LogSettings.message_budget`) and hands each attachment at most what is left of it:
fifty capped attachments in one mail must not inflate to a gigabyte between them.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field

from nlp.types import Attachment

_CHUNK = 64 * 1024
_MAX_ZIP_MEMBERS = 200

_LOG_EXTS = (".log", ".txt", ".out", ".err", ".gz", ".zip", ".json", ".jsonl", ".csv")
_ARCHIVE_EXTS = (".zip", ".tar", ".tgz", ".tar.gz", ".7z", ".rar", ".jar", ".war", ".bz2", ".xz")
_NOT_LOG_TYPES = ("image/", "audio/", "video/", "application/pdf", "text/html", "text/calendar")
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class LogSettings:
    max_log_bytes: int = 20 * 1024 * 1024
    max_compression_ratio: int = 100
    max_evidence_lines: int = 20
    # All log text one message may produce, decompressed, across its attachments;
    # None means three logs' worth.
    max_message_bytes: int | None = None

    @property
    def message_budget(self) -> int:
        if self.max_message_bytes is None:
            return 3 * self.max_log_bytes
        return self.max_message_bytes


@dataclass
class _Text:
    name: str
    data: bytes
    notes: list[str] = field(default_factory=list)
    read: int = 0  # bytes decompressed for it, kept or not (a binary member is dropped)

    @property
    def cost(self) -> int:
        """What it takes from a byte budget: what was inflated, not only what was kept."""
        return max(self.read, len(self.data))


def is_log_attachment(attachment: Attachment) -> bool:
    name, ctype, data = attachment.name.lower(), attachment.content_type.lower(), attachment.data
    if data.startswith(_GZIP_MAGIC) or data.startswith(_ZIP_MAGIC):
        return name.endswith((".gz", ".zip", ".tgz")) or "zip" in ctype or "octet" in ctype
    if ctype.startswith(_NOT_LOG_TYPES):
        return False
    if ctype.startswith("text/") or name.endswith(_LOG_EXTS):
        return True
    return _mostly_printable(data)


def _mostly_printable(data: bytes) -> bool:
    sample = data[:4096]
    if not sample or b"\x00" in sample:
        return False
    printable = sum(1 for b in sample if b >= 0x20 or b in (9, 10, 13))
    return printable / len(sample) >= 0.95


def _unpack(attachment: Attachment, settings: LogSettings) -> tuple[list[_Text], list[str]]:
    data, name = attachment.data, attachment.name or "attachment"
    notes = ["attachment was cut by the mail parser"] if attachment.truncated else []
    if data.startswith(_ZIP_MAGIC):
        texts, zip_notes = _unzip(name, data, settings)
        return texts, notes + zip_notes
    if data.startswith(_GZIP_MAGIC):
        out, note = gunzip(data, settings.max_log_bytes, settings.max_compression_ratio)
        notes.extend([note] if note else [])
        if _is_tar(out):
            texts, tar_notes = _untar(name, out, settings)
            return texts, notes + tar_notes
        return [_Text(name, out, notes)], []
    if _is_tar(data):
        texts, tar_notes = _untar(name, data[: settings.max_log_bytes], settings)
        return texts, notes + tar_notes
    return [_Text(name, data[: settings.max_log_bytes], notes)], []


def _is_tar(data: bytes) -> bool:
    return data[257:262] == b"ustar"


def _untar(name: str, data: bytes, settings: LogSettings) -> tuple[list[_Text], list[str]]:
    """Members of an (already decompressed, already capped) tar archive."""
    notes: list[str] = []
    texts: list[_Text] = []
    budget = settings.max_log_bytes  # shared by all members, as for zip archives
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for count, info in enumerate(archive):
                label = f"{name}:{info.name}"
                if count >= _MAX_ZIP_MEMBERS:
                    notes.append(f"{name}: only the first {_MAX_ZIP_MEMBERS} members read")
                    break
                if not info.isfile():
                    continue
                if info.name.lower().endswith(_ARCHIVE_EXTS):
                    notes.append(f"{label}: nested archive skipped")
                elif budget <= 0:
                    notes.append(f"{label}: skipped, {_human(settings.max_log_bytes)} read already")
                else:
                    text = _tar_member(archive, info, label, budget, settings)
                    budget -= text.cost
                    texts.append(text)
    except (tarfile.TarError, EOFError, OSError) as exc:
        notes.append(f"{name}: tar archive damaged or cut ({exc})")
    return texts, notes


def _tar_member(
    archive: tarfile.TarFile, info: tarfile.TarInfo, label: str, budget: int, s: LogSettings
) -> _Text:
    member = archive.extractfile(info)
    body = member.read(budget) if member is not None else b""
    notes: list[str] = []
    if body.startswith(_GZIP_MAGIC):
        body, note = gunzip(body, budget, s.max_compression_ratio)
        notes.extend([note] if note else [])
    if body and not _mostly_printable(body):
        return _Text(label, b"", [*notes, "binary member skipped"], read=len(body))
    return _Text(label, body, notes)


def _human(n: int) -> str:
    return f"{round(n / 1024 / 1024, 1):g} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def gunzip(data: bytes, max_bytes: int, max_ratio: int) -> tuple[bytes, str]:
    """Inflate (multi-member) gzip with output capped; returns (bytes, note)."""
    limit = min(max_bytes, max(len(data), 1) * max_ratio)
    kind = "size" if limit == max_bytes else "ratio"
    out = bytearray()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        for pos in range(0, len(data), _CHUNK):
            pending = data[pos : pos + _CHUNK]
            while pending:
                out += inflater.decompress(pending, limit - len(out) + 1)
                if len(out) > limit:
                    return bytes(
                        out[:limit]
                    ), f"decompression stopped at {_human(limit)} ({kind} cap)"
                if inflater.eof:
                    pending = inflater.unused_data
                    if not pending.startswith(_GZIP_MAGIC):
                        return bytes(out), ""
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    pending = inflater.unconsumed_tail
    except zlib.error as exc:
        return bytes(out), f"corrupt gzip data after {len(out):,} bytes ({exc})"
    if not inflater.eof:
        return bytes(out), f"gzip data ends early after {len(out):,} bytes (truncated)"
    return bytes(out), ""


def _unzip(name: str, data: bytes, settings: LogSettings) -> tuple[list[_Text], list[str]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        return [], [f"{name}: not a readable zip archive ({exc})"]
    notes: list[str] = []
    texts: list[_Text] = []
    budget = settings.max_log_bytes
    if len(members) > _MAX_ZIP_MEMBERS:
        notes.append(f"{name}: only the first {_MAX_ZIP_MEMBERS} of {len(members)} members read")
    for info in members[:_MAX_ZIP_MEMBERS]:
        label = f"{name}:{info.filename}"
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            notes.append(f"{label}: encrypted member not opened")
            continue
        if info.filename.lower().endswith(_ARCHIVE_EXTS):
            notes.append(f"{label}: nested archive skipped")
            continue
        if budget <= 0:
            notes.append(f"{label}: skipped, {_human(settings.max_log_bytes)} read already")
            continue
        text = _read_member(archive, info, label, budget, settings)
        if text is not None:
            budget -= text.cost
            texts.append(text)
    return texts, notes


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str, budget: int, s: LogSettings
) -> _Text | None:
    limit = min(budget, max(info.compress_size, 1) * s.max_compression_ratio)
    kind = "size" if limit == budget else "ratio"
    out = bytearray()
    notes: list[str] = []
    try:
        with archive.open(info) as member:
            while len(out) <= limit:
                chunk = member.read(min(_CHUNK, limit - len(out) + 1))
                if not chunk:
                    break
                out += chunk
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        RuntimeError,
        NotImplementedError,
    ) as e:
        notes.append(f"member damaged after {len(out):,} bytes ({e})")
    if len(out) > limit:
        del out[limit:]
        notes.append(f"decompression stopped at {_human(limit)} ({kind} cap)")
    data = bytes(out)
    if data.startswith(_GZIP_MAGIC):
        data, note = gunzip(data, budget, s.max_compression_ratio)
        notes.extend([note] if note else [])
    if data and not _mostly_printable(data):
        return _Text(label, b"", [*notes, "binary member skipped"], read=len(data))
    return _Text(label, data, notes)


def _decode(text: _Text) -> str:
    data = text.data
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text.notes.append("not UTF-8; decoded as Latin-1")
        return data.decode("latin-1", errors="replace")
