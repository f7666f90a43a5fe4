"""Head training on cached embeddings (``wb fit``)."""
