"""Train the recipe's tiny config on the shipped calibration text and save it as a local Hugging Face
folder, so perplexity and precision effects can be seen offline (a random model sits at perplexity ~ vocab
size whatever the precision). A demonstration model, not a language model: it has read 4 KB of text.

    .venv/bin/python scripts/train_tiny_llama.py --out /tmp/tiny-llama --steps 40
    # then a recipe copy with source.pretrained: /tmp/tiny-llama
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pipeline.llm.text_data import BUILTIN_CALIBRATION, BUILTIN_HELDOUT, encode
from pipeline.llm.tokenizer import BUILTIN_TOKENIZER, load_tokenizer
from pipeline.recipe.loader import load_recipe


def train(out: Path, steps: int, seq: int = 64, batch: int = 16, lr: float = 3e-3, seed: int = 0) -> float:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(BUILTIN_TOKENIZER)
    config = dict(load_recipe("llama").section("source")["config"])
    cfg = LlamaConfig(**config, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    ids = torch.tensor(encode(tokenizer, BUILTIN_CALIBRATION.read_text(encoding="utf-8")))
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    loss = torch.tensor(0.0)
    for step in range(steps):
        starts = rng.integers(0, len(ids) - seq, batch)
        x = torch.stack([ids[s : s + seq] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step}: loss {float(loss):.3f}")
    model.eval()
    held = torch.tensor([encode(tokenizer, BUILTIN_HELDOUT.read_text(encoding="utf-8"))[:128]])
    with torch.no_grad():
        print(f"held-out perplexity (first 128 tokens, PyTorch): {float(model(input_ids=held, labels=held).loss.exp()):.2f}")
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return float(loss)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    print(f"final training loss {train(args.out, args.steps):.3f}; saved {args.out}")


if __name__ == "__main__":
    main()
