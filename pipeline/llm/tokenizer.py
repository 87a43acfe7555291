"""Tokenizers: the model folder's own, or the built-in byte-level BPE shipped in pipeline/data/llm.

The built-in one exists so that the default recipe and the tests work offline; it was trained on the
calibration text the repo ships (`python -m pipeline.llm.tokenizer` regenerates it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PipelineError

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "llm"
BUILTIN_TOKENIZER = DATA_DIR / "tokenizer"
BUILTIN = "builtin"
BUILTIN_VOCAB = 512
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}


def tokenizer_dir(value: str | None, pretrained: Path | None) -> Path:
    """`builtin`, an explicit folder, or (when unset) the pretrained model folder's own tokenizer.

    A user's model folder without tokenizer.json is refused: the built-in 512-token vocabulary would
    silently replace the model's (its embedding rows would then mean other tokens). Only a config-built
    model (no folder) falls back to the built-in one unasked."""
    if value and value != BUILTIN:
        return Path(value).expanduser()
    if value is None and pretrained is not None:
        if not (pretrained / "tokenizer.json").exists():
            raise PipelineError(f"source.pretrained {pretrained}: no tokenizer.json (add the model's tokenizer "
                                "to the folder, or set source.tokenizer to its folder, or to 'builtin' on purpose)")
        return pretrained
    return BUILTIN_TOKENIZER


def load_tokenizer(folder: Path) -> Any:
    from transformers import PreTrainedTokenizerFast

    if not (folder / "tokenizer.json").exists():
        raise PipelineError(f"{folder}: no tokenizer.json (source.tokenizer must be a Hugging Face tokenizer "
                            "folder, or 'builtin')")
    try:
        return PreTrainedTokenizerFast.from_pretrained(str(folder))
    except Exception as e:
        raise PipelineError(f"{folder}: cannot load the tokenizer ({e.__class__.__name__}: {e})") from e


def train_builtin(dest: Path = BUILTIN_TOKENIZER, corpus: Path = DATA_DIR / "calibration.txt",
                  vocab_size: int = BUILTIN_VOCAB) -> None:
    """Byte-level BPE: every byte is a token, so held-out text never hits <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([str(corpus)], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.save_pretrained(str(dest))


if __name__ == "__main__":
    train_builtin()
    print(BUILTIN_TOKENIZER)
