"""A real model behind the emulator: any server speaking OpenAI's chat completions protocol (Ollama, vLLM,
llama.cpp's server, LM Studio, LiteLLM, OpenAI itself).

`config` says where it is and which upstream model answers for each Assistants model id; `request` describes a
model turn and builds the chat completions body; `client` streams the answer as typed deltas (`deltas`) and
maps every upstream failure to an `UpstreamError` (`errors`); `recording` appends finished turns to a file of
scripted turns that `--script` replays without the upstream.
"""
