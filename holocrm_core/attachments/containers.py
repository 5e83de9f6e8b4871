"""Attachments that hold attachments: EML (MIME, forwarded messages), Outlook MSG and ZIP archives, read recursively.

Members are read through the same dispatcher as top-level files, one level deeper, within one shared
decompressed-bytes budget; an archive that contains its own bytes (a quine) or nests past the depth limit
is refused. A member that fails is recorded as a problem of its parent (with its path) and the rest of the
container is still read. EML uses the standard library's ``email`` package (policy.default decodes
headers and transfer encodings); MSG uses extract-msg over olefile (no embedded object is run).
"""

from __future__ import annotations

import email
import email.policy
import io
import zipfile

from holocrm_core.attachments.documents import html_text, tidy
from holocrm_core.attachments.model import Context, Extracted, Problem, Refused, Section

_WHOLE_FILE_RULES = {"zip_bomb", "nesting", "loop"}


def _nested(data: bytes, name: str, locator: str, ctx: Context, out: Extracted) -> None:
    """Read a member and graft its sections under ``locator``; failures become problems, not exceptions."""
    from holocrm_core.attachments.extract import extract_data

    try:
        child = extract_data(data, name, ctx.child(data, locator))
    except Refused as exc:
        if exc.rule in _WHOLE_FILE_RULES:  # a bomb or a loop condemns the whole container, not one member
            raise
        out.problems.append(Problem(locator, exc.rule, exc.reason))
        return
    out.sections.extend(Section(f"{locator} / {s.locator}", s.text) for s in child.sections)
    out.problems.extend(Problem(f"{locator} / {p.locator}", p.rule, p.reason) for p in child.problems)
    out.warnings.extend(f"{locator}: {w}" for w in child.warnings)
    out.metadata.setdefault("members", []).append({"name": name, "kind": child.kind})


def extract_eml(data: bytes, ctx: Context, out: Extracted) -> None:
    message = email.message_from_bytes(data, policy=email.policy.default)
    _read_message(message, "message", ctx, out)


def _read_message(message, locator: str, ctx: Context, out: Extracted) -> None:
    headers = {k: str(message.get(k, "")) for k in ("From", "To", "Cc", "Subject", "Date")}
    if locator == "message":
        out.metadata.update({k.lower(): v for k, v in headers.items()})
    head = "\n".join(f"{k}: {v}" for k, v in headers.items() if v)
    body_parts, parts = [], 0
    for part in message.walk():
        parts += 1
        if parts > ctx.limits.max_members:
            out.problems.append(
                Problem(
                    locator,
                    "too_many_members",
                    f"more than {ctx.limits.max_members} MIME parts: the rest not read",
                )
            )
            break
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        file_name = part.get_filename()
        try:
            payload = part.get_payload(decode=True) or b""
        except Exception:  # noqa: BLE001 - malformed transfer encoding
            out.problems.append(Problem(locator, "corrupt", f"a {content_type} part cannot be decoded"))
            continue
        ctx.spend(len(payload), locator)
        disposition = part.get_content_disposition()
        if file_name or disposition == "attachment" or content_type == "message/rfc822":
            name = file_name or f"part{parts}"
            _nested(payload, name, f"{locator} / {name}", ctx, out)
        elif content_type == "text/plain":
            body_parts.append(payload.decode(part.get_content_charset() or "utf-8", errors="replace"))
        elif content_type == "text/html" and not body_parts:
            body_parts.append(html_text(payload)[1])
    out.sections.insert(
        0 if locator == "message" else len(out.sections),
        Section(locator, tidy(head + "\n\n" + "\n\n".join(body_parts))),
    )


def extract_msg(data: bytes, ctx: Context, out: Extracted) -> None:
    import extract_msg

    try:
        message = extract_msg.openMsg(data, delayAttachments=False)
    except Exception as exc:  # noqa: BLE001 - extract-msg raises many kinds for broken files
        raise Refused("corrupt", f"the Outlook message cannot be read ({type(exc).__name__})") from exc
    try:
        headers = {
            "From": message.sender or "",
            "To": message.to or "",
            "Cc": message.cc or "",
            "Subject": message.subject or "",
            "Date": str(message.date or ""),
        }
        out.metadata.update({k.lower(): v for k, v in headers.items()})
        body = message.body or ""
        if not body.strip() and getattr(message, "htmlBody", None):
            body = html_text(message.htmlBody)[1]
        head = "\n".join(f"{k}: {v}" for k, v in headers.items() if v)
        out.sections.append(Section("message", tidy(head + "\n\n" + body)))
        for number, attachment in enumerate(message.attachments, start=1):
            payload = attachment.data
            name = attachment.longFilename or attachment.shortFilename or f"attachment{number}"
            if isinstance(payload, (bytes, bytearray)):
                ctx.spend(len(payload), "message")
                _nested(bytes(payload), name, f"message / {name}", ctx, out)
            elif payload is not None and hasattr(payload, "exportBytes"):  # an embedded .msg
                _nested(payload.exportBytes(), name, f"message / {name}", ctx, out)
    finally:
        message.close()


def extract_zip(data: bytes, ctx: Context, out: Extracted) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as exc:
        raise Refused("corrupt", f"the ZIP archive is damaged or truncated ({str(exc)[:100]})") from exc
    limits = ctx.limits
    if len(infos) > limits.max_members:
        raise Refused(
            "too_many_members", f"the archive has {len(infos):,} members (limit {limits.max_members})"
        )
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_decompressed_bytes:
        raise Refused(
            "zip_bomb",
            f"the archive declares {declared / 2**20:,.0f} MB uncompressed "
            f"(limit {limits.max_decompressed_bytes // 2**20} MB): a zip bomb?",
        )
    encrypted = [i for i in infos if i.flag_bits & 0x1]
    if infos and len(encrypted) == len(infos):
        raise Refused("encrypted", "every member of the archive is password-protected")
    out.metadata["members_listed"] = len(infos)
    for info in infos:
        locator = info.filename
        if info.flag_bits & 0x1:
            out.problems.append(Problem(locator, "encrypted", "password-protected archive member"))
            continue
        if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
            out.problems.append(
                Problem(
                    locator,
                    "zip_bomb",
                    f"compression ratio "
                    f"{info.file_size / info.compress_size:,.0f}:1 (limit {limits.max_ratio})",
                )
            )
            continue
        cap = limits.max_decompressed_bytes - ctx.budget[0]
        try:
            with archive.open(info) as member:
                payload = member.read(cap + 1)  # declared sizes can lie: never read past the budget
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            out.problems.append(Problem(locator, "corrupt", f"member unreadable ({str(exc)[:100]})"))
            continue
        ctx.spend(len(payload), locator)
        _nested(payload, info.filename.rsplit("/", 1)[-1], locator, ctx, out)
