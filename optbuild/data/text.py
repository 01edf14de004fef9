"""Kind `text`: real sentences for a language model, tokenized with the model's own tokenizer.

`path` is a text file or a folder of `*.txt` files. Each non-empty line is a text; a file in the
fortune format (entries between lines holding only `%`, as Debian's `fortunes` packages ship)
gives one text per entry. The seeded subset is a permutation of the texts. The tokenizer is the
model's `tokenizer.json` (the `tokenizers` library; a folder or a zip holding one works too),
padded or truncated to the sequence length of the inputs (their dimension 1 at opt), and it
feeds the inputs named `input_ids`, `attention_mask` and `token_type_ids`. No labels.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.data.files import cached_sha256, versions
from optbuild.data.request import DatasetRequest, LabeledSamples
from optbuild.errors import OptbuildError

FEEDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
TOKENIZER = "tokenizer.json"


def _files(path: str) -> list[Path]:
    root = Path(path).expanduser()
    if root.is_dir():
        files = sorted(p for p in root.rglob("*.txt") if p.is_file())
        if not files:
            raise OptbuildError(f"text folder '{path}' has no .txt files: add some, or point 'path' at a text file")
        return files
    if root.is_file():
        return [root]
    raise OptbuildError(f"text path '{path}' does not exist: point 'path' at a text file or a folder of .txt files")


def _texts(files: list[Path]) -> list[str]:
    texts: list[str] = []
    for file in files:
        try:
            content = file.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            raise OptbuildError(f"cannot read text file '{file}': {err.strerror}; check its permissions") from None
        lines = content.splitlines()
        if "%" in (line.strip() for line in lines):  # fortune format: entries between % lines
            entry: list[str] = []
            for line in [*lines, "%"]:
                if line.strip() == "%":
                    texts.append(" ".join(" ".join(entry).split()))
                    entry = []
                else:
                    entry.append(line)
        else:
            texts += [line.strip() for line in lines]
    return [text for text in texts if text and text != "%"]


def tokenizer_file(location: str | None) -> tuple[str, str]:
    """(a description, the tokenizer.json text) from a file, a folder or a zip holding one."""
    if not location:
        raise OptbuildError("a text dataset needs the model's tokenizer: set the dataset's 'tokenizer' to its "
                            "tokenizer.json (or the model folder), or use model.source=huggingface")
    path = Path(location).expanduser()
    try:
        if path.is_dir():
            path = path / TOKENIZER
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                name = next(n for n in archive.namelist() if n.endswith(TOKENIZER))
                return f"{path}:{name}", archive.read(name).decode()
        return str(path), path.read_text()
    except (OSError, StopIteration, zipfile.BadZipFile, UnicodeDecodeError) as err:
        raise OptbuildError(f"no readable {TOKENIZER} at '{location}' ({type(err).__name__}): point the dataset's "
                            "'tokenizer' at the model's tokenizer.json") from None


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    files = _files(str(request.path))
    _, tokenizer = tokenizer_file(request.tokenizer)
    import hashlib

    return {"content_sha256": [cached_sha256(file) for file in files], "files": len(files),
            "tokenizer_sha256": hashlib.sha256(tokenizer.encode()).hexdigest(),
            "versions": versions(("tokenizers",))}


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    from tokenizers import Tokenizer

    texts = _texts(_files(str(request.path)))
    if len(texts) < request.num_samples:
        raise OptbuildError(f"text at '{request.path}' has {len(texts)} texts but num_samples is "
                            f"{request.num_samples}: lower num_samples to at most {len(texts)}")
    chosen = [texts[i] for i in np.random.default_rng(request.seed).permutation(len(texts))[:request.num_samples]]
    unknown = [spec["name"] for spec in request.inputs if spec["name"] not in FEEDS]
    if unknown:
        raise OptbuildError(f"a text dataset feeds {', '.join(FEEDS)}; input(s) {', '.join(unknown)} need other "
                            "data: use an npz dataset (one array per input)")
    length = int(request.inputs[0]["shape"][1])
    tokenizer = Tokenizer.from_str(tokenizer_file(request.tokenizer)[1])
    tokenizer.enable_truncation(max_length=length)
    tokenizer.enable_padding(length=length, pad_id=tokenizer.token_to_id("[PAD]") or 0)
    encoded = tokenizer.encode_batch(chosen)
    samples = {spec["name"]: np.asarray([getattr(e, FEEDS[spec["name"]]) for e in encoded], dtype=spec["dtype"])
               for spec in request.inputs}
    return LabeledSamples(samples, None, None)
