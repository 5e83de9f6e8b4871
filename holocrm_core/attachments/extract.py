"""Reading one attachment safely: kind by content, the extractor for it, limits, and a worker process that is killed
when a file hangs or eats memory.

``extract_data`` runs an extractor in the calling process (used inside the worker and by unit tests).
``AttachmentReader`` is what the pipeline uses: it checks the file size with ``stat()`` before reading a
byte (a 2 GB sparse file is refused instantly), hands the path to a long-lived worker process (spawned,
so no locks or threads of the parent are inherited; OCR and speech models load once per worker), waits
at most ``timeout_s`` while sampling the worker's resident memory, and kills and replaces the worker when
either limit is passed. Inside the worker the network is switched off (sockets refuse to open), no
macro, script or embedded object is ever run, and every failure becomes a ``Refused`` with a reason: the
run goes on with the next file.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from holocrm_core.attachments.detect import MEDIA_TYPES, REFUSED, detect_kind, extension_warning
from holocrm_core.attachments.model import Context, Extracted, Limits, Refused


def _extractor(kind: str):
    from holocrm_core.attachments import containers, documents, media, sheets

    table = {
        "pdf": documents.extract_pdf,
        "docx": documents.extract_docx,
        "pptx": documents.extract_pptx,
        "odt": documents.extract_opendocument,
        "odp": documents.extract_opendocument,
        "rtf": documents.extract_rtf,
        "html": documents.extract_html,
        "txt": documents.extract_txt,
        "md": documents.extract_md,
        "json": documents.extract_json,
        "xlsx": sheets.extract_workbook,
        "xls": sheets.extract_workbook,
        "ods": sheets.extract_workbook,
        "csv": sheets.extract_csv,
        "eml": containers.extract_eml,
        "msg": containers.extract_msg,
        "zip": containers.extract_zip,
        "png": media.extract_image,
        "jpeg": media.extract_image,
        "tiff": media.extract_image,
        "wav": media.extract_audio,
        "mp3": media.extract_audio,
    }
    return table[kind]


def extract_data(data: bytes, file_name: str = "", ctx: Context | None = None) -> Extracted:
    """Text, sections and metadata of one attachment's bytes (raises Refused with a reason)."""
    ctx = ctx or Context(Limits())
    if len(data) > ctx.limits.max_bytes:
        raise Refused("too_large", f"{len(data) / 2**20:,.1f} MB (limit {ctx.limits.max_bytes // 2**20} MB)")
    kind = detect_kind(data, file_name)
    if kind in REFUSED:
        raise Refused(
            "unsupported" if kind != "encrypted_office" else "encrypted",
            f"{REFUSED[kind]}" + (f" (named {file_name})" if file_name else ""),
        )
    out = Extracted(kind=kind, media_type=MEDIA_TYPES[kind])
    warning = extension_warning(kind, file_name)
    if warning:
        out.warnings.append(warning)
    try:
        _extractor(kind)(data, ctx, out)
    except Refused:
        raise
    except RecursionError as exc:
        raise Refused("corrupt", f"the {kind.upper()} nests objects without end") from exc
    except MemoryError as exc:
        raise Refused("memory", f"the {kind.upper()} needs more memory than allowed") from exc
    except Exception as exc:  # noqa: BLE001 - a library's parse error on a damaged file
        raise Refused(
            "corrupt", f"the {kind.upper()} cannot be parsed ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc
    total = 0
    for section in out.sections:
        if total + len(section.text) > ctx.limits.max_text_chars:
            section.text = section.text[: max(0, ctx.limits.max_text_chars - total)]
            out.warnings.append(f"text cut at {ctx.limits.max_text_chars:,} characters")
        total += len(section.text)
    out.sections = [s for s in out.sections if s.text.strip()]
    if not out.sections and out.problems:  # a container none of whose members could be read
        first = out.problems[0]
        raise Refused(
            first.rule,
            f"nothing readable: {first.locator}: {first.reason}"
            + (f" (and {len(out.problems) - 1} more)" if len(out.problems) > 1 else ""),
        )
    return out


@dataclass
class Outcome:
    """One attachment read: ``extracted`` when it worked, else ``rule`` + ``reason`` for the quarantine."""

    file_name: str
    extracted: Extracted | None = None
    rule: str = ""
    reason: str = ""
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.extracted is not None


def _no_network() -> None:
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled while reading attachments")

    class NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            refuse()

    socket.socket = NoSocket  # type: ignore[misc]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]


def _peak_rss() -> int:
    """This process's resident high-water mark. VmHWM, not getrusage: ru_maxrss survives fork + exec, so a
    spawned worker would report its parent's peak (the embedding model) as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _worker(connection, limits: Limits) -> None:
    _no_network()
    os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    for kind in ("pdf", "txt"):  # import the extractor modules and the common parsers before the clock runs
        _extractor(kind)
    import charset_normalizer  # noqa: F401
    import pypdf  # noqa: F401

    connection.send("ready")  # the per-file clock starts after the interpreter is up, not before
    while True:
        job = connection.recv()
        if job is None:
            return
        path, file_name = job
        started = time.perf_counter()
        try:
            data = Path(path).read_bytes()
            result = ("ok", extract_data(data, file_name, Context(limits)))
        except Refused as exc:
            result = ("refused", (exc.rule, exc.reason))
        except Exception as exc:  # noqa: BLE001 - reported, never lost
            result = (
                "refused",
                ("error", f"{type(exc).__name__}: {exc}; {traceback.format_exc(limit=2)[-200:]}"),
            )
        connection.send((result, time.perf_counter() - started, _peak_rss()))


class AttachmentReader:
    """Reads attachment files one after another in an isolated worker; use as a context manager."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self._process = None
        self._connection = None
        self.peak_rss_bytes = 0
        self.restarts = 0

    def __enter__(self) -> AttachmentReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_worker, args=(child, self.limits), daemon=True)
        self._process.start()
        child.close()
        self._connection = parent
        if not parent.poll(120) or parent.recv() != "ready":
            self._kill()
            raise RuntimeError("the attachment reader process did not start within 120 s")

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(5)
        self._process, self._connection = None, None
        self.restarts += 1

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._connection.send(None)
                self._process.join(5)
            except (OSError, BrokenPipeError):
                pass
            if self._process.is_alive():
                self._process.kill()
        self._process, self._connection = None, None

    def read(self, path: str | Path, file_name: str | None = None) -> Outcome:
        path = Path(path)
        name = file_name or path.name
        try:
            size = path.stat().st_size
        except OSError as exc:
            return Outcome(name, rule="missing", reason=f"the file cannot be opened ({exc.strerror})")
        if size > self.limits.max_bytes:
            return Outcome(
                name,
                rule="too_large",
                reason=f"{size / 2**20:,.1f} MB (limit {self.limits.max_bytes // 2**20} MB)",
            )
        if self._process is None or not self._process.is_alive():
            self._start()
        import psutil

        started = time.perf_counter()
        self._connection.send((str(path), name))
        watched = psutil.Process(self._process.pid)
        while True:
            if self._connection.poll(0.05):
                try:
                    (status, payload), seconds, peak = self._connection.recv()
                except (EOFError, OSError):
                    self._kill()
                    return Outcome(
                        name,
                        rule="crash",
                        reason="the reader process died on this file",
                        seconds=time.perf_counter() - started,
                    )
                self.peak_rss_bytes = max(self.peak_rss_bytes, peak)
                if status == "ok":
                    return Outcome(name, extracted=payload, seconds=seconds, peak_rss_bytes=peak)
                return Outcome(name, rule=payload[0], reason=payload[1], seconds=seconds, peak_rss_bytes=peak)
            elapsed = time.perf_counter() - started
            try:
                rss = watched.memory_info().rss
            except psutil.Error:
                rss = 0
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            if not self._process.is_alive():
                self._kill()
                return Outcome(
                    name, rule="crash", reason="the reader process died on this file", seconds=elapsed
                )
            if elapsed > self.limits.timeout_s:
                self._kill()
                return Outcome(
                    name,
                    rule="timeout",
                    reason=f"reading took longer than {self.limits.timeout_s:g} s: stopped",
                    seconds=elapsed,
                )
            if rss > self.limits.max_rss_bytes:
                self._kill()
                return Outcome(
                    name,
                    rule="memory",
                    reason=f"reading needed more than {self.limits.max_rss_bytes // 2**20} MB: stopped",
                    seconds=elapsed,
                    peak_rss_bytes=rss,
                )
