"""A local emulator of the OpenAI Assistants API v2."""

__version__ = "0.1.0"
