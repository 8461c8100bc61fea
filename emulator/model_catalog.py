"""The models the emulator knows: context window, tokenizer encoding and price per million tokens.

Backs `/v1/models`, model validation on assistants and runs, token counting and the cost report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_window: int
    max_output_tokens: int
    encoding: str
    input_usd_per_million: float
    output_usd_per_million: float
    created: int
    owned_by: str = "system"


_O200K = "o200k_base"
_CL100K = "cl100k_base"

CATALOG: Final[dict[str, ModelInfo]] = {
    info.id: info
    for info in (
        ModelInfo("gpt-5.5", 128_000, 32_768, _O200K, 5.00, 25.00, 1_767_225_600),
        ModelInfo("gpt-5.4", 128_000, 32_768, _O200K, 2.50, 15.00, 1_759_276_800),
        ModelInfo("gpt-5", 400_000, 128_000, _O200K, 1.25, 10.00, 1_754_524_800),
        ModelInfo("gpt-5-mini", 400_000, 128_000, _O200K, 0.30, 1.20, 1_754_524_800),
        ModelInfo("gpt-5-nano", 400_000, 128_000, _O200K, 0.05, 0.40, 1_754_524_800),
        ModelInfo("gpt-4.1", 1_047_576, 32_768, _O200K, 2.00, 8.00, 1_744_588_800),
        ModelInfo("gpt-4.1-mini", 1_047_576, 32_768, _O200K, 0.40, 1.60, 1_744_588_800),
        ModelInfo("gpt-4.1-nano", 1_047_576, 32_768, _O200K, 0.10, 0.40, 1_744_588_800),
        ModelInfo("gpt-4o", 128_000, 16_384, _O200K, 2.50, 10.00, 1_715_367_049),
        ModelInfo("gpt-4o-mini", 128_000, 16_384, _O200K, 0.15, 0.60, 1_721_172_741),
        ModelInfo("o3-mini", 200_000, 100_000, _O200K, 1.10, 4.40, 1_738_195_200),
        ModelInfo("gpt-4-turbo", 128_000, 4_096, _CL100K, 10.00, 30.00, 1_712_361_441),
        ModelInfo("gpt-3.5-turbo", 16_385, 4_096, _CL100K, 0.50, 1.50, 1_677_610_602),
    )
}

FALLBACK_MODEL: Final = "gpt-4o"
"""Window and encoding for model ids outside the table, when the server accepts any model."""


def lookup(model_id: str) -> ModelInfo | None:
    return CATALOG.get(model_id)


def info_or_fallback(model_id: str) -> ModelInfo:
    return CATALOG.get(model_id) or CATALOG[FALLBACK_MODEL]
