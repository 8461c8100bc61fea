"""Wire shapes of messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from emulator import limits
from emulator.schemas.common import Metadata, StrictModel, openai_error

if TYPE_CHECKING:
    from emulator.store.rows import Message

ImageDetail = Literal["auto", "low", "high"]


class ImageFileRef(StrictModel):
    file_id: str
    detail: ImageDetail = "auto"


class ImageFilePart(StrictModel):
    type: Literal["image_file"]
    image_file: ImageFileRef


def _image_url(url: str) -> str:
    """An absolute http(s) URL with a host, or a `data:image/...` URL (the hosted API took both); anything else
    would be stored and then break every read of the message."""
    if url.lower().startswith("data:image/") and "," in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed IPv6 literal
        parts = None
    web = parts is not None and parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    if web and not any(character.isspace() for character in url):
        return url
    raise openai_error("Expected a valid URL, but got a value with an invalid format.", about_param=True)


class ImageUrlRef(StrictModel):
    url: Annotated[str, AfterValidator(_image_url)]
    detail: ImageDetail = "auto"


class ImageUrlPart(StrictModel):
    type: Literal["image_url"]
    image_url: ImageUrlRef


class TextPart(StrictModel):
    type: Literal["text"]
    text: Annotated[str, Field(max_length=limits.MESSAGE_CONTENT_MAX_CHARS)]


ContentPart = Annotated[ImageFilePart | ImageUrlPart | TextPart, Field(discriminator="type")]


class CodeInterpreterTypeOnly(StrictModel):
    type: Literal["code_interpreter"]


class FileSearchTypeOnly(StrictModel):
    type: Literal["file_search"]


AttachmentTool = Annotated[CodeInterpreterTypeOnly | FileSearchTypeOnly, Field(discriminator="type")]


class Attachment(StrictModel):
    file_id: str
    tools: list[AttachmentTool]


class CreateMessage(StrictModel):
    role: Literal["user", "assistant"]
    content: (
        Annotated[str, Field(max_length=limits.MESSAGE_CONTENT_MAX_CHARS)]
        | Annotated[list[ContentPart], Field(min_length=1)]
    )
    attachments: Annotated[list[Attachment] | None, Field(max_length=limits.MESSAGE_MAX_ATTACHMENTS)] = None
    metadata: Metadata = None

    def content_parts(self) -> list[dict[str, Any]]:
        """The stored (response) form of the content: text parts gain `value` and `annotations`."""
        if isinstance(self.content, str):
            return [text_part(self.content)]
        parts: list[dict[str, Any]] = []
        for part in self.content:
            if isinstance(part, TextPart):
                parts.append(text_part(part.text))
            else:
                parts.append(part.model_dump())
        return parts

    def attachment_file_ids(self) -> list[str]:
        return [attachment.file_id for attachment in self.attachments or []]

    def image_file_ids(self) -> list[str]:
        if isinstance(self.content, str):
            return []
        return [part.image_file.file_id for part in self.content if isinstance(part, ImageFilePart)]


class ModifyMessage(StrictModel):
    metadata: Metadata = None


def text_part(value: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def render_message(row: Message) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "thread.message",
        "created_at": row.created_at,
        "assistant_id": row.assistant_id,
        "thread_id": row.thread_id,
        "run_id": row.run_id,
        "role": row.role,
        "content": row.content,
        "attachments": row.attachments,
        "metadata": row.metadata_,
        "status": row.status,
        "incomplete_details": row.incomplete_details,
        "completed_at": row.completed_at,
        "incomplete_at": row.incomplete_at,
    }
