"""Streams a multipart file upload to disk as it arrives: a 512 MB upload never sits in memory.

The form's small fields (purpose, expires_after[...]) are collected in memory up to a small cap in all; the part
named `file` goes straight to a temporary file beside its final place. Going over the size limit stops the
upload at once with a 413 and removes what was written; so does a form that does not parse, or a file name that
no file could have (a 400).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from emulator import limits
from emulator.errors import InvalidRequest, PayloadTooLarge
from emulator.json_input import check_text

_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f]")


@dataclass
class Upload:
    fields: dict[str, str]
    filename: str | None
    size: int
    path: Path | None


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    buffer: bytearray = field(default_factory=bytearray)


class _Receiver:
    def __init__(self, target: Path, max_bytes: int) -> None:
        self.target = target
        self.partial = target.with_name(f"{target.name}.part")
        self.max_bytes = max_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.size = 0
        self.file: IO[bytes] | None = None
        self.part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self.too_large = False
        self.fields_bytes = 0
        """Of every part but the file, headers aside: a form of many small fields is bounded too."""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda data, start, end: self._header_field.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self._header_value.extend(data[start:end]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.part = _Part()

    def _header_end(self) -> None:
        self.part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        self.part.filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        if self.part.name == "file":
            if self.file is not None:
                raise InvalidRequest("Only one 'file' may be uploaded per request.", param="file")
            if self.part.filename is not None:
                _check_filename(self.part.filename)
            self.filename = self.part.filename
            self.file = open(self.partial, "wb")  # noqa: SIM115 - closed in close()/discard()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name == "file" and self.file is not None:
            self.size += end - start
            if self.size > self.max_bytes:
                self.too_large = True
                raise _TooLarge
            self.file.write(data[start:end])
        else:
            self.part.buffer.extend(data[start:end])
            self.fields_bytes += end - start
            if self.fields_bytes > limits.UPLOAD_FORM_FIELDS_MAX_BYTES:
                raise InvalidRequest(f"Form field '{self.part.name}' is too large.", param=self.part.name)

    def _part_end(self) -> None:
        if self.part.name != "file":
            value = self.part.buffer.decode("utf-8", "replace")
            check_text(self.part.name, value)
            self.fields[self.part.name] = value

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def discard(self) -> None:
        self.close()
        if self.partial.exists():
            os.unlink(self.partial)


def _check_filename(filename: str) -> None:
    """A name a file can have: not too long for a file system, no control character (CR, LF, NUL, ...)."""
    if len(filename) > limits.FILENAME_MAX_CHARS:
        raise InvalidRequest(
            f"Invalid 'file': the file name is too long. Expected a name with at most {limits.FILENAME_MAX_CHARS} "
            f"characters, but got one with {len(filename)} characters instead.",
            param="file",
            code="invalid_value",
        )
    control = _CONTROL_CHARACTER.search(filename)
    if control is not None:
        raise InvalidRequest(
            f"Invalid 'file': the file name contains a control character (U+{ord(control.group()):04X}), which a "
            "file name cannot hold.",
            param="file",
            code="invalid_value",
        )


class _TooLarge(Exception):
    pass


async def receive_upload(
    content_type: str | None, chunks: AsyncIterator[bytes], target: Path, max_bytes: int
) -> Upload:
    """Parse a multipart/form-data body from `chunks`, writing the `file` part to `target`."""
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest("Expected a multipart/form-data body with a 'file' and a 'purpose'.")
    target.parent.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(target, max_bytes)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
    except _TooLarge:
        receiver.discard()
        raise PayloadTooLarge(
            f"File is too large: the maximum size is {max_bytes} bytes.", param="file", code="file_too_large"
        ) from None
    except FormParserError as exc:
        receiver.discard()
        raise InvalidRequest(
            f"Could not parse the multipart form: {str(exc).rstrip('.')}. Send a multipart/form-data body with a "
            "'file' and a 'purpose'.",
            code="invalid_multipart",
        ) from None
    except BaseException:
        receiver.discard()
        raise
    receiver.close()
    path = None
    if receiver.file is not None:
        os.replace(receiver.partial, target)  # complete uploads only ever appear under their final name
        path = target
    return Upload(fields=receiver.fields, filename=receiver.filename, size=receiver.size, path=path)
