"""The project's tokenizer: byte-level BPE trained on the phase-1 corpus, or one loaded as is.

A phase-1 document is its files concatenated as `<|file_sep|>{path}\\n{content}`, and documents
are separated by `<|endoftext|>` when packed. Both markers are special tokens: each encodes as
one id (0 and 1 in a trained tokenizer), BPE never learns them from ordinary bytes, and
`decode` keeps them, so `decode(encode(text)) == text` byte for byte.

Files that spell a marker out (tokenizer code does) must not inject control tokens:
`encode_documents` reads special-token text as plain text everywhere except `<|file_sep|>` at
the start of a line, which is where the corpus format puts it (a content line that itself
begins with the marker is the one ambiguous case, and is read as a separator).

The arXiv 2409.02326 model uses a 64000-token vocabulary; the demo trains 8000. Training is
deterministic: the same sample gives the same vocabulary and merges on any run or machine.

transformers is imported inside the functions: the Dagster definitions import this module.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from snowcoder_assets.storage import connect_duckdb
from snowcoder_assets.strict import StrictModel

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

EOD_TOKEN = "<|endoftext|>"
FILE_SEP_TOKEN = "<|file_sep|>"
# Packed shards never pad. Padding exists only for callers that batch ragged inputs
# (generation, evaluation), masked by the attention mask; a collator that masks pad labels would
# also mask EOD, so training must not pad.
PAD_TOKEN = EOD_TOKEN
SPECIAL_TOKENS = (EOD_TOKEN, FILE_SEP_TOKEN)  # in this order: ids 0 and 1 when trained here
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte, plus the special tokens

_SEPARATOR_AT_LINE_START = re.compile(r"(?:^|(?<=\n))" + re.escape(FILE_SEP_TOKEN))

# A Hub id is `name` or `owner/name`; anything else that is not a folder is a missing path.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


class TokenizerConfig(StrictModel):
    """Train a tokenizer on the corpus, or use an existing one (`path`)."""

    path: str = ""  # an existing tokenizer folder or Hub id; empty = train one
    vocab_size: int = Field(default=8000, ge=MIN_VOCAB_SIZE)  # 64000 at paper scale
    min_frequency: int = Field(default=2, ge=1)  # a pair seen fewer times is never merged
    sample_bytes: int = Field(default=64_000_000, gt=0)  # train on at most this much UTF-8 text
    # BPE training has no randomness; the seed is for the caller that orders the sample.
    seed: int = 0
    trust_remote_code: bool = False  # only for `path`: never run a Hub repository's code unasked


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on the first `config.sample_bytes` of `texts`.

    The initial alphabet is all 256 byte symbols, so any text is representable (no unknown
    token), and nothing normalizes the text, so the round trip is byte-exact.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(sample_texts(texts, config.sample_bytes), trainer)
    return _wrap(backend)


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=EOD_TOKEN,
        pad_token=PAD_TOKEN,
        extra_special_tokens=[FILE_SEP_TOKEN],
        clean_up_tokenization_spaces=False,  # "a ." must not decode as "a."
    )


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> Path:
    """Write the tokenizer folder atomically: `out_dir` holds the old tokenizer or the new one.

    It is saved into a hidden sibling folder that is then renamed onto `out_dir`. An existing
    `out_dir` is renamed aside first and deleted after, so only a kill between those two renames
    leaves no `out_dir` (the old folder then survives as `.<name>.*.old`).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        tokenizer.save_pretrained(tmp)
        _replace_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # already gone after a successful rename
    return out_dir


def _replace_dir(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old)  # renaming a folder onto an empty folder is allowed
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def load_tokenizer(path_or_id: str, trust_remote_code: bool = False) -> PreTrainedTokenizerFast:
    """Load a tokenizer folder (never touching the network) or, failing that, a Hub id."""
    from transformers import AutoTokenizer

    if not path_or_id:
        raise ValueError("no tokenizer path or Hub id given")
    folder = Path(path_or_id).expanduser()
    if folder.is_dir():
        return AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    if not _HUB_ID.fullmatch(path_or_id):
        raise FileNotFoundError(f"no tokenizer folder at {folder} (and not a Hub id)")
    return AutoTokenizer.from_pretrained(path_or_id, trust_remote_code=trust_remote_code)


def count_tokens(
    tokenizer: PreTrainedTokenizerFast, texts: Sequence[str], batch_size: int = 1024
) -> list[int]:
    """Tokens per text as `encode_documents` makes them (what training will see)."""
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        counts.extend(
            len(ids) for ids in encode_documents(tokenizer, texts[start : start + batch_size])
        )
    return counts


def encode_documents(tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]) -> list[list[int]]:
    """Ids of corpus documents: a line-initial `<|file_sep|>` is the separator id, any other
    special-token text is plain text; no special tokens added, no padding, no truncation.

    Batches go to the Rust backend, which encodes them on all cores. TOKENIZERS_PARALLELISM=false
    makes it serial, and so does forking a process after it has encoded in parallel (tokenizers
    then disables parallelism in the child, with a warning); RAYON_NUM_THREADS caps the threads.
    """
    backend, separator = _plain_text_backend(tokenizer), file_separator_id(tokenizer)
    if separator is None:
        return [e.ids for e in backend.encode_batch_fast(list(texts), add_special_tokens=False)]
    parts = [_SEPARATOR_AT_LINE_START.split(text) for text in texts]
    flat = [part for split in parts for part in split]
    encoded = iter(backend.encode_batch_fast(flat, add_special_tokens=False))
    documents = []
    for split in parts:
        ids = list(next(encoded).ids)  # before the first separator ("" in the corpus format)
        for _ in split[1:]:
            ids.append(separator)
            ids.extend(next(encoded).ids)
        documents.append(ids)
    return documents


def file_separator_id(tokenizer: PreTrainedTokenizerFast) -> int | None:
    """The id of `<|file_sep|>` when the tokenizer has it as one token, else None."""
    token_id = tokenizer.convert_tokens_to_ids(FILE_SEP_TOKEN)
    return None if token_id is None or token_id == tokenizer.unk_token_id else int(token_id)


@functools.lru_cache(maxsize=4)
def _plain_text_backend(tokenizer: PreTrainedTokenizerFast) -> Tokenizer:
    """A copy of the Rust tokenizer that reads special-token text as plain text, without the
    padding or truncation a loaded tokenizer may carry."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    backend.encode_special_tokens = True
    return backend


def sample_texts(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """The texts up to `max_bytes` of UTF-8 in all; the one that crosses the limit is cut there.

    The iterator is left unread after the limit, so an expensive source stops early.
    """
    remaining = max_bytes
    if remaining <= 0:
        return
    for text in texts:
        size = _utf8_len(text)
        if size >= remaining:
            yield text if size == remaining else _utf8_prefix(text, remaining)
            return
        remaining -= size
        yield text


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _utf8_prefix(text: str, num_bytes: int) -> str:
    """The longest prefix of `text` that fits in `num_bytes` of UTF-8 (no half characters)."""
    if text.isascii():
        return text[:num_bytes]
    return text.encode("utf-8", "surrogatepass")[:num_bytes].decode("utf-8", "ignore")


def build_tokenizer(
    settings: TokenizerConfig, documents: Iterable[str], out_dir: Path, log=print
) -> dict[str, object]:
    """The `tokenizer` stage: train a byte-level BPE on the documents given (in a seeded order),
    or adopt the configured one; save it as a Hugging Face folder."""
    if settings.path:
        tokenizer = load_tokenizer(settings.path, settings.trust_remote_code)
        origin = settings.path
    else:
        tokenizer = train_tokenizer(sample_texts(documents, settings.sample_bytes), settings)
        origin = "trained on phase1_corpus"
    save_tokenizer(tokenizer, out_dir)
    log(f"tokenizer ({origin}): {len(tokenizer)} tokens")
    return {"vocab_size": len(tokenizer), "origin": origin}


def documents_in_seeded_order(paths: Sequence[Path], seed: int) -> Iterator[str]:
    """Document texts of the corpus files, in an order fixed by `seed` (not by the files)."""
    if not paths:
        return
    with connect_duckdb() as con:
        result = con.execute(
            "SELECT text FROM read_parquet(?) ORDER BY md5(? || document_id)",
            [[str(p) for p in paths], str(seed)],
        )
        for batch in result.fetch_record_batch(256):
            yield from batch.column(0).to_pylist()
