"""A real model behind the emulator: any server speaking OpenAI's chat completions protocol (Ollama, vLLM,
llama.cpp's server, LM Studio, LiteLLM, OpenAI itself).

`backend.UpstreamBackend` is what the run engine holds (made from the settings by `from_settings`). Inside it:
`config` says where the upstream is and which of its models answers for each Assistants model id; `request`
describes a model turn and builds the chat completions body; `client` streams the answer as typed deltas
(`deltas`) and maps every upstream failure to an `UpstreamError` (`errors`); `recording` appends finished turns
to a file of scripted turns that `--script` replays without the upstream.
"""
