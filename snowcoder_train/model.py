"""The model: a Llama-2-architecture causal LM built from the manifest's model shape.

Presets are functions: `paper_model_config()` is the arXiv 2409.02326 model (24 layers,
hidden 2048, SwiGLU FFN 5632, 16 heads without KV grouping, vocab 64000, context 8192, RoPE,
tied embeddings: ~1.36B parameters); `demo_model_config(vocab)` is the laptop-CPU demo.

transformers is imported inside `build_model`: the FLOP and parameter counts are plain math.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from snowcoder_train.manifest import ModelConfig

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

ATTN_IMPLEMENTATION = "sdpa"  # torch's scaled_dot_product_attention (flash/memory-efficient)


def attention_for(device_type: str) -> str:
    """SDPA on GPUs (flash kernels); eager attention on CPUs, where PyTorch's CPU flash kernel
    made a demo step slower (bf16, length 255, 2 cores: 366 against 346 ms eager, 320 against
    263 ms compiled, where inductor fuses the mask and softmax of the eager form)."""
    return ATTN_IMPLEMENTATION if device_type == "cuda" else "eager"


def paper_model_config() -> ModelConfig:
    return ModelConfig(
        vocab_size=64000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=8192,
    )


def demo_model_config(vocab_size: int = 8000) -> ModelConfig:
    """~5.3M parameters (vocab 8000; 3.2M outside the embedding): minutes on two CPU cores."""
    return ModelConfig(
        vocab_size=vocab_size,
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
    )


def as_dict(model_cfg: ModelConfig | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(model_cfg, ModelConfig):
        return dataclasses.asdict(model_cfg)
    return dict(model_cfg)


def build_model(
    model_cfg: ModelConfig | Mapping[str, Any], attn_implementation: str = ATTN_IMPLEMENTATION
) -> LlamaForCausalLM:
    """A freshly initialized fp32 model (seed torch first for reproducible weights)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**as_dict(model_cfg), attn_implementation=attn_implementation)
    return LlamaForCausalLM(config)


def num_parameters(model_cfg: ModelConfig | Mapping[str, Any]) -> int:
    """Unique parameters (a tied embedding counted once), without building the model."""
    c = as_dict(model_cfg)
    h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"]
    per_layer = _matmul_params_per_layer(c) + 2 * h  # + two RMSNorm weights
    embeddings = vocab * h * (1 if c.get("tie_word_embeddings", True) else 2)
    return layers * per_layer + embeddings + h  # + the final norm


def flops_per_token(model_cfg: ModelConfig | Mapping[str, Any], seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), the PaLM/nanoGPT MFU convention.

    6 * N counts the matmul weights a token passes through (all layers' projections plus the
    LM head, which costs a matmul even when tied; the embedding lookup and norms are free), and
    12 * layers * hidden * seq_len the attention score and value matmuls (QK^T and AV,
    2 * 2 * seq_len * hidden FLOPs forward per layer, x3 for backward), counted as full
    attention without discounting the causal mask, as PaLM (arXiv 2204.02311, app. B) does.
    """
    c = as_dict(model_cfg)
    h, layers = c["hidden_size"], c["num_hidden_layers"]
    n_matmul = layers * _matmul_params_per_layer(c) + c["vocab_size"] * h
    return 6.0 * n_matmul + 12.0 * layers * h * seq_len


def _matmul_params_per_layer(c: Mapping[str, Any]) -> int:
    h, heads, kv_heads = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
    kv_dim = h // heads * kv_heads
    attention = 2 * h * h + 2 * h * kv_dim  # q, o and k, v projections (no biases)
    mlp = 3 * h * c["intermediate_size"]  # gate, up, down (SwiGLU)
    return attention + mlp
