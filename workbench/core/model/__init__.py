"""Encoders: loading a model and tokenizer, and classifying sentences with it."""
