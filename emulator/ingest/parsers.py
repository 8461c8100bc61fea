"""Text extraction by file type, with maintained libraries only.

* Text and source code (.txt .md .json .c .cpp .cs .css .go .java .js .php .py .rb .sh .tex .ts, the list the
  real file_search documents): decoded as UTF-8 (a UTF-8 or UTF-16 byte-order mark is honoured).
* .html: the text outside tags, from the standard library's `html.parser` (script and style skipped).
* .pdf: pypdf's text extraction, page by page. .docx: python-docx (paragraphs, then table cells).
  .pptx: python-pptx (the text frames and tables of every slide).
* .doc (legacy binary Word) has no maintained pure-Python parser: `unsupported_file`, like images, audio,
  video, archives and any extension file_search does not read.
* A file that cannot be decoded or parsed, or that yields no text at all, is `invalid_file`: never a crash,
  never a silently empty file.
"""

from __future__ import annotations

import codecs
import io
import logging
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import PurePosixPath

log = logging.getLogger("emulator.ingest")

TEXT_EXTENSIONS = frozenset(
    {
        ".txt",
        ".md",
        ".json",
        ".c",
        ".cpp",
        ".cs",
        ".css",
        ".go",
        ".java",
        ".js",
        ".php",
        ".py",
        ".rb",
        ".sh",
        ".tex",
        ".ts",
    }
)
"""The documented plain-text kinds (SPEC.md's list); anything else but the kinds below is `unsupported_file`."""
HTML_EXTENSIONS = frozenset({".html"})
MEDIA_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".svg",
        ".ico",
        ".heic",
        ".mp4",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpeg",
        ".mpg",
        ".m4v",
        ".mp3",
        ".wav",
        ".ogg",
        ".flac",
        ".m4a",
    }
)


class IngestError(Exception):
    """Why a file cannot be used: `code` is `unsupported_file` or `invalid_file`, as in `last_error`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _unsupported(extension: str) -> IngestError:
    if extension in MEDIA_EXTENSIONS:
        return IngestError(
            "unsupported_file", f"Images, audio and video are not supported by file search (extension {extension})."
        )
    shown = extension or "(none)"
    return IngestError("unsupported_file", f"The file type is not supported by file search (extension {shown}).")


def _invalid(reason: str) -> IngestError:
    return IngestError("invalid_file", f"The file could not be parsed: {reason}.")


def decode_text(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise _invalid("it is not valid UTF-16 text") from exc
    if b"\x00" in data:
        raise _invalid("it is binary, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("it is not valid UTF-8 text") from exc


class _TextOfHTML(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "template", "noscript"})
    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(data: bytes) -> str:
    parser = _TextOfHTML()
    parser.feed(decode_text(data))
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise _invalid("the PDF is encrypted")
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)


def docx_text(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(parts)


def pptx_text(data: bytes) -> str:
    import pptx

    presentation = pptx.Presentation(io.BytesIO(data))
    parts: list[str] = []
    for slide in presentation.slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                for row in shape.table.rows:
                    parts.append("\t".join(cell.text for cell in row.cells))
        parts.append("")
    return "\n".join(parts)


DOCUMENTED_EXTENSIONS = frozenset({*TEXT_EXTENSIONS, *HTML_EXTENSIONS, ".pdf", ".doc", ".docx", ".pptx"})
"""Every kind the real file_search documents as readable (.doc included, though it fails here at ingestion): a
message attachment for file_search must be one of them."""


_PARSERS: dict[str, Callable[[bytes], str]] = {
    **{extension: decode_text for extension in TEXT_EXTENSIONS},
    **{extension: html_text for extension in HTML_EXTENSIONS},
    ".pdf": pdf_text,
    ".docx": docx_text,
    ".pptx": pptx_text,
}


def extension_of(filename: str) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def extract_text(filename: str, data: bytes) -> str:
    """The text of the file, or `IngestError`. The parser is chosen by the filename's extension."""
    extension = extension_of(filename)
    parser = _PARSERS.get(extension)
    if parser is None:
        raise _unsupported(extension)
    if not data:
        raise _invalid("the file is empty")
    try:
        text = parser(data)
    except IngestError:
        raise
    except Exception as exc:  # a parser library's own error on a malformed file
        log.info("could not parse %s: %r", filename, exc)
        raise _invalid(f"it is not a readable {extension[1:].upper()} file") from exc
    if not text.strip():
        raise _invalid("no text could be extracted from it")
    return text
