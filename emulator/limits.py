"""Every limit of the emulated API, in one table. Values follow SPEC.md and the official schema."""

from __future__ import annotations

from typing import Final

# Metadata
METADATA_MAX_PAIRS: Final = 16
METADATA_KEY_MAX_CHARS: Final = 64
METADATA_VALUE_MAX_CHARS: Final = 512

# Assistants
ASSISTANT_NAME_MAX_CHARS: Final = 256
ASSISTANT_DESCRIPTION_MAX_CHARS: Final = 512
ASSISTANT_INSTRUCTIONS_MAX_CHARS: Final = 256_000
ASSISTANT_MAX_TOOLS: Final = 128
RUN_MAX_TOOLS_OVERRIDE: Final = 20
FUNCTION_NAME_PATTERN: Final = r"^[a-zA-Z0-9_-]{1,64}$"
FUNCTION_DESCRIPTION_MAX_CHARS: Final = 1024
TEMPERATURE_MIN: Final = 0.0
TEMPERATURE_MAX: Final = 2.0
TOP_P_MIN: Final = 0.0
TOP_P_MAX: Final = 1.0

# Tool resources
CODE_INTERPRETER_MAX_FILES: Final = 20
ASSISTANT_MAX_VECTOR_STORES: Final = 1
THREAD_MAX_VECTOR_STORES: Final = 1

# Messages
MESSAGE_MAX_ATTACHMENTS: Final = 10
MESSAGE_CONTENT_MAX_CHARS: Final = 256_000

# Lists
LIST_LIMIT_MIN: Final = 1
LIST_LIMIT_MAX: Final = 100
LIST_LIMIT_DEFAULT: Final = 20
FILES_LIST_LIMIT_MAX: Final = 10_000
FILES_LIST_LIMIT_DEFAULT: Final = 10_000

# Files
FILE_MAX_BYTES: Final = 512 * 1024 * 1024
FILE_UPLOAD_PURPOSES: Final = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FILENAME_MAX_CHARS: Final = 255
"""The longest name a file on disk can have (ext4, APFS, NTFS): a longer one never came from a client's file."""
UPLOAD_FORM_FIELDS_MAX_BYTES: Final = 64 * 1024
"""All the small fields of an upload form together (purpose, expires_after[...]): the file part is apart."""

# Request bodies (every route but the file upload, which streams to disk under FILE_MAX_BYTES)
JSON_BODY_MAX_BYTES: Final = 32 * 1024 * 1024
"""The hosted API published no limit. The largest body within the published per-field limits is an assistant
create or update: 256,000 characters of instructions, 128 tools with 1,024-character descriptions, a 256-character
name, a 512-character description and 16 metadata pairs of 64 + 512 characters: at most 4.8 MB even with every
character written as a 12-byte escape (`\\ud83d\\ude00`). 32 MiB leaves over 27 MB for what has no published
bound (function parameter schemas, the messages of a new thread: 100 of 256,000 ASCII characters is 25.6 MB),
and bounds what a refused body costs: it is refused, with a 413, as soon as it is known to be larger."""
JSON_MAX_DEPTH: Final = 64
"""Objects and arrays nested in a body, counting the body itself. The hosted API allows a strict schema 10 levels
of nesting (about 22 levels of JSON in a body); 64 is ample, and a 64-deep schema is checked with a third of
Python's recursion limit to spare."""

# Runs
RUN_EXPIRY_SECONDS: Final = 600
RUN_STREAM_LEASE_SECONDS: Final = 4.0
"""While a stream drives a run it holds a lease this long past its next look at the run (wall seconds, renewed at
every phase), and observers and runners leave the run to it. A stream whose process dies leaves its run to a
runner (`runs.runner`) this long after its last phase."""
RUNNER_SWEEP_SECONDS: Final = 1.0
"""How often each server process's runner looks in the database for due runs it was not told about (runs made
due by another replica, runs left by a process that died)."""
RUNNER_CLAIM_SECONDS: Final = 4.0
"""A runner's claim on a due run: no other runner takes the run this long; a runner that dies leaves it due
again after it."""
RUNNER_GRACE_SECONDS: Final = 1.0
"""A run's next move is left this long past its time to the client that may read it (its read settles the run as
cheaply as it always did; a client that polls right after creating a run is the common case), then a runner
takes it. An upstream model call is the runner's at once. Long enough for a loaded server's reads to come first:
with 0.1 s, 32 clients creating and polling runs on PostgreSQL lost about 7% of their runs/s to runners settling
runs that reads were about to settle (one more transaction each, and a wait for the thread's lock)."""
RUNNER_ROUND_SECONDS: Final = 0.05
"""A runner woken by due times claims at most once in this time: runs due close together go in one claim."""
RUNNER_RETRY_SECONDS: Final = 1.0
"""A run the runner found nothing to do for (its thread's files still being processed) is due again after this."""
RUNNER_BATCH: Final = 32
"""Runs one claim takes at most; also how many runs a runner advances at once (each in a worker thread)."""
RUN_MIN_TOKEN_BOUND: Final = 256
RUN_MAX_TOKEN_BOUND: Final = 2_147_483_647
"""The hosted API published no maximum; this one is what an INTEGER column holds on every supported database."""

# Times (Unix seconds in BIGINT columns)
TIMESTAMP_MAX: Final = 2**63 - 1
SECONDS_PER_DAY: Final = 86_400

# Sizes
BYTES_PER_GB: Final = 1_000_000_000
"""Storage is billed in decimal GB (SPEC.md)."""

# Retention
THREAD_RETENTION_DAYS: Final = 60

# The control plane
CLOCK_MAX_ADVANCE_SECONDS: Final = 100 * 365 * SECONDS_PER_DAY
"""One advance of a tenant's clock moves it at most 100 years."""

# Rate limits (SPEC.md "Rate limits and cost"). The management endpoints (assistants, threads, messages, runs,
# steps, vector stores and their files and batches; not files, not models) were limited by method, independent
# of tier; creating a run also counted against its own limit.
MANAGEMENT_RATE_LIMITS: Final = {"get": 1_000, "post": 300, "delete": 300, "create_run": 200}
# Presets per usage tier: those management limits, and per model call requests and tokens per minute (the
# published gpt-4o figures, applied to every model unless configured per model).
RATE_LIMIT_TIERS: Final = {
    "free": {"management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 3, "model_tokens_per_minute": 30_000},
    "tier-1": {
        "management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 500, "model_tokens_per_minute": 30_000
    },
    "tier-2": {
        "management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 5_000, "model_tokens_per_minute": 450_000
    },
    "tier-3": {
        "management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 5_000, "model_tokens_per_minute": 800_000
    },
    "tier-4": {
        "management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 10_000, "model_tokens_per_minute": 2_000_000
    },
    "tier-5": {
        "management": MANAGEMENT_RATE_LIMITS, "model_requests_per_minute": 10_000, "model_tokens_per_minute": 30_000_000
    },
}
RATE_LIMIT_WINDOW_SECONDS: Final = 60
CONTROL_CACHE_SECONDS: Final = 1.0
"""How long a replica trusts its cached copy of a tenant's faults, limits and latency (its own writes
invalidate it at once)."""

# Vector stores (SPEC.md "Vector stores and file_search"; the official schema's bounds)
VECTOR_STORE_MAX_FILES: Final = 10_000
VECTOR_STORE_CREATE_MAX_FILE_IDS: Final = 500
VECTOR_STORE_BATCH_MIN_FILES: Final = 1
VECTOR_STORE_BATCH_MAX_FILES: Final = 2_000
VECTOR_STORE_EXPIRES_DAYS_MIN: Final = 1
VECTOR_STORE_EXPIRES_DAYS_MAX: Final = 365
VECTOR_STORE_FILE_ATTRIBUTES_MAX_PAIRS: Final = 16
VECTOR_STORE_FILE_ATTRIBUTE_KEY_MAX_CHARS: Final = 64
VECTOR_STORE_FILE_ATTRIBUTE_VALUE_MAX_CHARS: Final = 512
CHUNK_AUTO_MAX_TOKENS: Final = 800
CHUNK_AUTO_OVERLAP_TOKENS: Final = 400
CHUNK_STATIC_MIN_TOKENS: Final = 100
CHUNK_STATIC_MAX_TOKENS: Final = 4_096
SEARCH_MAX_NUM_RESULTS_MIN: Final = 1
SEARCH_MAX_NUM_RESULTS_MAX: Final = 50
SEARCH_MAX_NUM_RESULTS_DEFAULT: Final = 10
VECTOR_STORE_FREE_BYTES: Final = BYTES_PER_GB
"""Storage billing: the first GB (decimal, 10**9 bytes) of vector store usage per tenant is free..."""
VECTOR_STORE_USD_PER_GB_DAY: Final = 0.10
"""...then $0.10 per GB per day."""

# code_interpreter (SPEC: Python only, 120 s per execution, 512 MB of memory, $0.03 per session: a session per thread)
CODE_INTERPRETER_TIMEOUT_SECONDS: Final = 120
CODE_INTERPRETER_MEMORY_BYTES: Final = 512 * 1024 * 1024
CODE_INTERPRETER_MAX_LOG_CHARS: Final = 20_000
CODE_INTERPRETER_SESSION_USD: Final = 0.03
CODE_INTERPRETER_MAX_OUTPUT_FILES: Final = 100
"""Files a cell's run gets back (new or changed in /mnt/data); more are named in the logs, not returned."""
CODE_INTERPRETER_MAX_OUTPUT_BYTES: Final = 1024 * 1024 * 1024
"""Bytes of files a cell's run gets back."""
CODE_INTERPRETER_SESSION_DISK_BYTES: Final = 2 * 1024 * 1024 * 1024
"""A session's /mnt/data: a cell that leaves more ends its session (its files are removed)."""

DATABASE_POOL_SIZE = 10
"""Connections a process keeps to a server database (PostgreSQL) for each of its two lanes, the event loop's
and the worker threads' (`awaiting_lane.AwaitingLane`): 20 at most, so that four replicas fit PostgreSQL's default
`max_connections` of 100. A unit of work beyond them waits for one rather than opening a connection the server
would refuse (`EMULATOR_DATABASE_POOL_SIZE` changes it)."""
