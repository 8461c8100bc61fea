"""Helpers for the vector store tests: real PDF / DOCX documents generated on the spot, uploads, the clock."""

from __future__ import annotations

import io

import httpx
from openai import OpenAI


def pdf_bytes(paragraphs: list[str]) -> bytes:
    """A real PDF written by fpdf2 (one paragraph per page)."""
    from fpdf import FPDF

    document = FPDF()
    document.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        document.add_page()
        document.multi_cell(0, 8, paragraph)
    return bytes(document.output())


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    """A real .docx written by python-docx."""
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes(title: str, body: str) -> bytes:
    """A real .pptx written by python-pptx (one title-and-content slide)."""
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = title
    slide.placeholders[1].text = body
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def upload(client: OpenAI, name: str, data: bytes | str) -> str:
    payload = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, io.BytesIO(payload)), purpose="assistants").id


def advance_clock(control: httpx.Client, seconds: int) -> int:
    response = control.post("/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def emulator_now(control: httpx.Client) -> int:
    return control.get("/clock").json()["now"]
