"""A character tokenizer for the numeric models: digits, operators, '.', 'e', letters for unit
names, space, separators, and five specials (PAD, BOS, EOS, UNK, NUM: the hybrid's one-position
placeholder for a numeric span). Saved beside the model as `numeric_tokenizer.json`."""

from __future__ import annotations

import json
import string
from pathlib import Path

from metaexamples.io import write_json

DEFAULT_CHARS: tuple[str, ...] = tuple(" +-*/.=_()^" + string.digits + string.ascii_letters)
SPECIALS: tuple[str, ...] = ("<pad>", "<bos>", "<eos>", "<unk>", "<num>")
TOKENIZER_FILE = "numeric_tokenizer.json"


class CharTokenizer:
    pad_id, bos_id, eos_id, unk_id, num_id = range(5)

    def __init__(self, chars=DEFAULT_CHARS) -> None:
        chars = list(chars)
        if len(set(chars)) != len(chars) or any(len(c) != 1 for c in chars):
            raise ValueError("chars must be distinct single characters")
        self.chars = chars
        self.itos: list[str] = list(SPECIALS) + chars
        self.stoi: dict[str, int] = {c: i + len(SPECIALS) for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        """Characters -> ids (unknown characters -> UNK); no BOS/EOS added."""
        return [self.stoi.get(c, self.unk_id) for c in text]

    def decode(self, ids) -> str:
        """Ids -> text, up to the first EOS; specials other than NUM are dropped."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i == self.num_id:
                out.append("<num>")
            elif i >= len(SPECIALS) and i < len(self.itos):
                out.append(self.itos[i])
        return "".join(out)

    def save_pretrained(self, folder) -> None:
        write_json(Path(folder) / TOKENIZER_FILE, {"specials": list(SPECIALS), "chars": self.chars})

    @classmethod
    def from_pretrained(cls, folder) -> "CharTokenizer":
        data = json.loads((Path(folder) / TOKENIZER_FILE).read_text(encoding="utf-8"))
        if list(data.get("specials", [])) != list(SPECIALS):
            raise ValueError(f"{folder}: {TOKENIZER_FILE} has different special tokens")
        return cls(data["chars"])
