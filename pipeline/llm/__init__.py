"""Decoder-only LLM pieces the Llama adapter and `orin-trt generate` share: the KV-cache I/O contract,
sampling, the generation loop, perplexity and the built-in offline tokenizer."""
