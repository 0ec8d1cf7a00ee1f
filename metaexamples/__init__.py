"""metaexamples: synthetic formal-language experiments on causal language models."""

__version__ = "0.1.0"
