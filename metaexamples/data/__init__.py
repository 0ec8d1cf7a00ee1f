"""The data stage: symbols, items, metaexamples, splits, canonical corpus, mixing, build."""
