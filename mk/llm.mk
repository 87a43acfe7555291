# LLM generation (docs/llm.md): `make generate MODEL=llama PRECISION=int4-awq PROMPT="Once upon a time"`.
PROMPT ?= The lighthouse keeper
MAX_NEW_TOKENS ?= 64

.PHONY: generate
generate: setup
	$(ORIN) generate $(ARGS) --prompt "$(PROMPT)" --max-new-tokens $(MAX_NEW_TOKENS)
