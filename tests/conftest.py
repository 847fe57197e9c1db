"""Shared fixtures: a tiny randomly initialised BERT with the real WordPiece vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.base.config import TrainConfig


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BertForSequenceClassification saved as a standard folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from workbench.core.model.loading import ID2LABEL, LABEL2ID, load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_config(tiny_model_dir: Path) -> TrainConfig:
    """A training that takes a few seconds: 96 sentences, batch 16, fp32."""
    return TrainConfig(model=str(tiny_model_dir), epochs=2, batch_size=16, train_limit=96,
                       learning_rate=1e-3, precision="fp32", eval_batch_size=256)
