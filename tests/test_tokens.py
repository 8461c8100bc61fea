"""emulator.tokens: offline encodings, known counts, chat-message overhead and token-window chunking.

These tests need no server: they use none of the conftest fixtures.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import tiktoken

from emulator import tokens

REPO_ROOT = Path(__file__).resolve().parents[1]
BOTH = ("o200k_base", "cl100k_base")

# Token ids published in OpenAI's cookbook "How to count tokens with tiktoken" (sections 4 and 5), plus
# "hello world", whose ids are the ones every tiktoken tutorial prints.
KNOWN_IDS = {
    "o200k_base": {
        "hello world": [24912, 2375],
        "tiktoken is great!": [83, 8251, 2488, 382, 2212, 0],
        "antidisestablishmentarianism": [493, 129901, 376, 160388, 21203, 2367],
        "2 + 2 = 4": [17, 659, 220, 17, 314, 220, 19],
        "お誕生日おめでとう": [8930, 9697, 243, 128225, 8930, 17693, 4344, 48669],
    },
    "cl100k_base": {
        "hello world": [15339, 1917],
        "tiktoken is great!": [83, 1609, 5963, 374, 2294, 0],
        "antidisestablishmentarianism": [519, 85342, 34500, 479, 8997, 2191],
        "2 + 2 = 4": [17, 489, 220, 17, 284, 220, 19],
        "お誕生日おめでとう": [33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
    },
}

UNICODE_SAMPLE = "Grüße, 你好世界! مرحبا 👩‍👩‍👧 ∑x² — naïve café\n\ttabs  and <|endoftext|> as text"


@pytest.mark.parametrize("encoding", BOTH)
def test_known_token_ids_and_counts(encoding: str) -> None:
    for text, ids in KNOWN_IDS[encoding].items():
        assert tokens.encode(text, encoding) == ids, text
        assert tokens.count(text, encoding) == len(ids), text
        assert tokens.decode(ids, encoding) == text
    assert tokens.count("hello world", encoding) == 2


@pytest.mark.parametrize("encoding", BOTH)
def test_unicode_round_trip_and_special_token_text(encoding: str) -> None:
    ids = tokens.encode(UNICODE_SAMPLE, encoding)
    assert tokens.decode(ids, encoding) == UNICODE_SAMPLE
    eot = tokens.get_encoding(encoding).eot_token
    assert eot not in ids  # "<|endoftext|>" in user text is ordinary text, not the special token
    assert tokens.count("<|endoftext|>", encoding) > 1
    with pytest.raises(ValueError):  # what tiktoken would do without disallowed_special=()
        tokens.get_encoding(encoding).encode("<|endoftext|>")


def test_definitions_match_tiktoken_ext(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned pat_str, special tokens and sha256 equal tiktoken's own (tiktoken_ext.openai_public), so
    the encodings are identical to what `tiktoken.get_encoding` would build after its download."""
    from tiktoken_ext import openai_public

    requested: dict[str, str | None] = {}

    def local_loader(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        name = url.rsplit("/", 1)[-1].removesuffix(".tiktoken")
        requested[name] = expected_hash
        return tokens.get_encoding(name)._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", local_loader)
    for name in BOTH:
        theirs = openai_public.ENCODING_CONSTRUCTORS[name]()
        ours = tokens.get_encoding(name)
        assert theirs["name"] == ours.name == name
        assert theirs["pat_str"] == ours._pat_str
        assert theirs["special_tokens"] == ours._special_tokens
        assert requested[name] == tokens._SPECS[name].sha256
        assert theirs.get("explicit_n_vocab") is None
    assert tokens.get_encoding("o200k_base").n_vocab == 200019
    assert tokens.get_encoding("cl100k_base").n_vocab == 100277


def test_get_encoding_caches_and_rejects_unknown_names() -> None:
    assert tokens.get_encoding("o200k_base") is tokens.get_encoding("o200k_base")
    assert isinstance(tokens.get_encoding("cl100k_base"), tiktoken.Encoding)
    with pytest.raises(ValueError, match="p50k_base"):
        tokens.get_encoding("p50k_base")
    with pytest.raises(ValueError):
        tokens.count("x", "gpt-4o")


def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str] = []
    real_load = tokens._load_ranks

    def counting_load(name: str, expected_sha256: str) -> dict[bytes, int]:
        loads.append(name)
        return real_load(name, expected_sha256)

    monkeypatch.setattr(tokens, "_load_ranks", counting_load)
    monkeypatch.setattr(tokens, "_BUILT", {})
    tokens._build.cache_clear()
    barrier = threading.Barrier(8)
    results: list[tiktoken.Encoding] = []

    def first_use() -> None:
        barrier.wait()
        results.append(tokens.get_encoding("cl100k_base"))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == ["cl100k_base"]
    assert len(results) == 8 and all(result is results[0] for result in results)


# --- offline proof -----------------------------------------------------------------------------------

# Runs first in the child interpreter: any TCP connection (direct, or to the proxy) raises at once.
NO_NETWORK = textwrap.dedent(
    """
    import socket

    def _refuse(*args, **kwargs):
        raise OSError("network disabled by tests/test_tokens.py")

    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse

    import sys

    class _HideBpeOpenai:  # the encodings must load from our own package data: bpe-openai is no dependency

        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "bpe_openai":
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by tests/test_tokens.py)")
            return None

    sys.meta_path.insert(0, _HideBpeOpenai())
    """
)


def _run_offline(body: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key.lower() not in {"no_proxy", "all_proxy"}}
    dead_proxy = "http://127.0.0.1:9"  # discard port: nothing listens there
    env.update(
        TIKTOKEN_CACHE_DIR=str(cache_dir),
        DATA_GYM_CACHE_DIR=str(cache_dir),
        HTTP_PROXY=dead_proxy,
        HTTPS_PROXY=dead_proxy,
        http_proxy=dead_proxy,
        https_proxy=dead_proxy,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK + textwrap.dedent(body)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_encodings_load_without_network_and_without_tiktoken_cache(tmp_path: Path) -> None:
    """Our approach bypasses tiktoken's cache entirely: the cache dir must stay empty; and the ranks come from
    our own package data, with bpe-openai unimportable."""
    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    result = _run_offline(
        """
        import json
        from emulator import tokens
        print(json.dumps({
            "counts": {name: tokens.count("hello world", name) for name in tokens.ENCODINGS},
            "ids": {name: tokens.encode("tiktoken is great!", name) for name in tokens.ENCODINGS},
        }))
        """,
        cache_dir,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["counts"] == {"o200k_base": 2, "cl100k_base": 2}
    assert report["ids"] == {name: KNOWN_IDS[name]["tiktoken is great!"] for name in BOTH}
    assert list(cache_dir.iterdir()) == []


def test_the_package_does_not_depend_on_bpe_openai() -> None:
    """bpe-openai's 71 MB compiled extension was installed only for its encoding files."""
    requirements = importlib.metadata.requires("assistants-emulator") or []
    assert not [r for r in requirements if r.lower().replace("_", "-").startswith("bpe-openai")]
    shipped = sorted(path.name for path in (REPO_ROOT / "emulator" / "encodings").glob("*.tiktoken.gz"))
    assert shipped == ["cl100k_base.tiktoken.gz", "o200k_base.tiktoken.gz"]


def test_the_sandbox_really_blocks_tiktokens_download(tmp_path: Path) -> None:
    """Control for the test above: in the same sandbox, plain tiktoken (which downloads) must fail."""
    cache_dir = tmp_path / "tiktoken-cache"
    cache_dir.mkdir()
    result = _run_offline(
        """
        import tiktoken
        tiktoken.get_encoding("o200k_base")
        """,
        cache_dir,
    )
    assert result.returncode != 0
    assert "network disabled by tests/test_tokens.py" in result.stderr or "ProxyError" in result.stderr
    assert list(cache_dir.iterdir()) == []


# --- chat messages -----------------------------------------------------------------------------------


def test_count_message_matches_the_cookbook_example() -> None:
    """The cookbook's example prompt: 124 prompt tokens for gpt-4o (o200k_base) and 129 for gpt-4
    (cl100k_base), as counted by the real API. Its `name` fields cost their tokens plus 1 each."""
    jargon = (
        "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."
    )
    circle = (
        "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."
    )
    pivot = "This late pivot means we don't have time to boil the ocean for the client deliverable."
    messages = [
        ("system", None, jargon),
        ("system", "example_user", "New synergies will help drive top-line growth."),
        ("system", "example_assistant", "Things working well together will increase revenue."),
        ("system", "example_user", circle),
        ("system", "example_assistant", "Let's talk later when we're less busy about how to do better."),
        ("user", None, pivot),
    ]
    for encoding, expected in (("o200k_base", 124), ("cl100k_base", 129)):
        total = tokens.PROMPT_PRIMING_TOKENS
        for role, name, content in messages:
            total += tokens.count_message(role, content, encoding)
            if name is not None:
                total += tokens.count(name, encoding) + 1
        assert total == expected, encoding


def test_count_message_convention() -> None:
    assert tokens.PROMPT_PRIMING_TOKENS == 3
    for encoding in BOTH:
        for role in ("user", "assistant", "system"):
            assert tokens.count(role, encoding) == 1
            assert tokens.count_message(role, "hello world", encoding) == 3 + 1 + 2
            assert tokens.count_message(role, "", encoding) == 4


# --- chunking ----------------------------------------------------------------------------------------


def _document() -> str:
    paragraphs = []
    for i in range(60):
        paragraphs.append(
            f"Section {i}. The emulator stores vector-store files as overlapping windows of tokens; "
            f"window {i} mentions {i * 37 % 101} widgets, and the quick brown fox jumps over the lazy dog."
        )
    return "\n\n".join(paragraphs)


def _multilingual_document() -> str:
    parts = [
        "お誕生日おめでとう",
        "𠜎𠜱𠝹 🎉👩\u200d👩\u200d👧🏳️\u200d🌈",  # 4-byte CJK extension B characters, emoji ZWJ sequences
        "Grüße aus Köln",
        "你好世界\uff0c今天天气很好。",
        "مرحبا بالعالم",
    ]
    return " ".join(parts[i % len(parts)] + f" {i}" for i in range(200))


@pytest.mark.parametrize(
    ("n_tokens", "max_tokens", "overlap"),
    [
        *[(0, 10, 3), (1, 10, 3), (10, 10, 3), (11, 10, 3), (17, 10, 3), (100, 10, 0), (101, 10, 9)],
        *[(5000, 800, 400), (4000, 800, 400), (801, 800, 400)],
    ],
)
def test_token_windows_invariants(n_tokens: int, max_tokens: int, overlap: int) -> None:
    windows = tokens.token_windows(n_tokens, max_tokens, overlap)
    if n_tokens == 0:
        assert windows == []
        return
    assert windows[0][0] == 0 and windows[-1][1] == n_tokens
    assert all(0 < end - start <= max_tokens for start, end in windows)
    assert all(end - start == max_tokens for start, end in windows[:-1])
    for (_, end), (next_start, next_end) in itertools.pairwise(windows):
        assert end - next_start == overlap  # consecutive windows share exactly `overlap` tokens
        assert next_end > end  # and every window adds new tokens
    # Dropping each later window's first `overlap` tokens gives back every token exactly once, in order.
    ids = list(range(n_tokens))
    rebuilt = ids[slice(*windows[0])]
    for start, end in windows[1:]:
        rebuilt += ids[start:end][overlap:]
    assert rebuilt == ids


def test_token_windows_rejects_bad_parameters() -> None:
    for max_tokens, overlap in ((10, 10), (10, 11), (10, -1), (0, 0)):
        with pytest.raises(ValueError):
            tokens.token_windows(100, max_tokens, overlap)
    with pytest.raises(ValueError):
        tokens.split_into_chunks("some text", "o200k_base", 100, 100)


@pytest.mark.parametrize("encoding", BOTH)
@pytest.mark.parametrize(("max_tokens", "overlap"), [(800, 400), (100, 50), (37, 0), (64, 13)])
def test_split_into_chunks_ascii(encoding: str, max_tokens: int, overlap: int) -> None:
    text = _document()
    ids = tokens.encode(text, encoding)
    chunks = tokens.split_into_chunks(text, encoding, max_tokens, overlap)
    windows = tokens.token_windows(len(ids), max_tokens, overlap)
    assert len(chunks) == len(windows) > 1
    assert all(count <= max_tokens for _, count in chunks)
    # ASCII: every token boundary is a character boundary, so each chunk is exactly its window's text.
    expected_texts = [tokens.decode(ids[start:end], encoding) for start, end in windows]
    assert [chunk for chunk, _ in chunks] == expected_texts
    assert [count for _, count in chunks] == [end - start for start, end in windows]
    # Removing from each later chunk the text of its first `overlap` tokens rebuilds the document, and that
    # overlap text is exactly the end of the previous chunk.
    rebuilt = chunks[0][0]
    for k in range(1, len(chunks)):
        previous, chunk, start = chunks[k - 1][0], chunks[k][0], windows[k][0]
        shared = tokens.decode(ids[start : start + overlap], encoding)
        assert chunk.startswith(shared) and previous.endswith(shared)
        rebuilt += chunk[len(shared) :]
    assert rebuilt == text


@pytest.mark.parametrize("encoding", BOTH)
def test_split_into_chunks_never_cuts_a_character(encoding: str) -> None:
    text = _multilingual_document()
    ids = tokens.encode(text, encoding)
    # Token ids whose bytes are not a whole UTF-8 text exist in this document (e.g. 誕 is two tokens).
    enc = tokens.get_encoding(encoding)
    assert any(b"\xef\xbf\xbd" in enc.decode(ids[i : i + 1]).encode() for i in range(len(ids)))
    for max_tokens in (7, 10, 31):
        partition = tokens.split_into_chunks(text, encoding, max_tokens, 0)
        assert "".join(chunk for chunk, _ in partition) == text
        assert sum(count for _, count in partition) == len(ids)
        for overlap in (1, 3, max_tokens - 1):
            chunks = tokens.split_into_chunks(text, encoding, max_tokens, overlap)
            position = 0
            for chunk, count in chunks:
                assert "\ufffd" not in chunk and count <= max_tokens
                found = text.find(chunk, position)
                assert found >= position  # each chunk is a slice of the text, in order
                position = found
            assert text.endswith(chunks[-1][0]) and text.startswith(chunks[0][0])


def test_split_into_chunks_edge_cases() -> None:
    assert tokens.split_into_chunks("", "o200k_base", 800, 400) == []
    assert tokens.split_into_chunks("hello world", "o200k_base", 800, 400) == [("hello world", 2)]
    assert tokens.split_into_chunks("hello world", "o200k_base", 1, 0) == [("hello", 1), (" world", 1)]
    # 誕 is two o200k tokens; the character goes to the window whose token starts inside it.
    assert tokens.encode("誕", "o200k_base") == [9697, 243]
    one_token_windows = tokens.split_into_chunks("お誕生", "o200k_base", 1, 0)
    assert one_token_windows == [("お", 1), ("", 1), ("誕", 1), ("生", 1)]
    surrogate = "a\ud800b"  # a lone surrogate: tiktoken encodes it as U+FFFD, and so do the chunks
    pieces = tokens.split_into_chunks(surrogate, "o200k_base", 1, 0)
    assert "".join(chunk for chunk, _ in pieces) == "a\ufffdb"
