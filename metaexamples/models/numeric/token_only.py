"""The token-only baseline: a small character-level Llama that reads "<bos>{question}=" and
writes the answer text ("2427", "3500 m", "True") character by character, then <eos>.

Training: next-token cross-entropy on the answer characters and the <eos> only (the question
is context, label -100). Prediction: batched greedy decoding with the KV cache from left-padded
prompts, at most `config.max_answer_len` characters; the text is read back with the task's
`parse_answer` (a number, optionally followed by a unit; or True/False).

Two options from the arithmetic-with-transformers literature, so the hybrid is compared with
good token-only practice:
- `answer_order="reversed"` (Lee et al. 2023, "Teaching Arithmetic to Small Transformers"):
  the answer's number is written least-significant digit first ("-1234 m" is trained and
  generated as "-4321 m"; `write_answer` / `read_answer`), so each digit depends on digits
  already written; predictions are turned back before scoring.
- `digit_positions=True` (Abacus embeddings, McLeish et al. 2024): every digit also gets a
  learned embedding of its place in its number, counted from the least significant digit in
  the question (numbers written most-significant first) and from the first digit in the answer
  (which with reversed order is again the least significant); non-digits get none.
`dropout` applies to the input embeddings (attention_dropout too)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaForCausalLM

from metaexamples.models.numeric.config import NumericTokenOnlyConfig
from metaexamples.models.numeric.text import parse_answer
from metaexamples.models.numeric.tokenizer import CharTokenizer

SEP = "="


class NumericTokenOnlyForCausalLM(LlamaForCausalLM):
    config_class = NumericTokenOnlyConfig

    def __init__(self, config: NumericTokenOnlyConfig):
        super().__init__(config)
        self.numeric_tokenizer = CharTokenizer(config.chars)
        self.input_dropout = nn.Dropout(float(config.dropout))
        if config.digit_positions:  # place 0 = not a digit (zero vector)
            self.digit_embed = nn.Embedding(config.max_digits + 1, config.hidden_size, padding_idx=0)
        self.digit_ids = [self.numeric_tokenizer.stoi[d] for d in "0123456789"]
        self.post_init()

    def is_digit(self) -> list[bool]:
        out = [False] * len(self.numeric_tokenizer)
        for i in self.digit_ids:
            out[i] = True
        return out

    def forward(self, input_ids=None, digit_places=None, inputs_embeds=None, **kwargs):
        if inputs_embeds is None and (self.config.digit_positions or self.config.dropout > 0):
            inputs_embeds = self.model.embed_tokens(input_ids)
            if self.config.digit_positions:
                if digit_places is None:
                    raise ValueError("digit_positions=True: pass digit_places (token_only.digit_places)")
                inputs_embeds = inputs_embeds + self.digit_embed(digit_places.clamp(max=self.config.max_digits))
            inputs_embeds = self.input_dropout(inputs_embeds)
            input_ids = None
        return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        self.numeric_tokenizer.save_pretrained(save_directory)


def prompt_ids(tok: CharTokenizer, question: str) -> list[int]:
    return [tok.bos_id] + tok.encode(question + SEP)


def write_answer(text: str, order: str) -> str:
    """The answer as the model writes it: "reversed" turns the number's characters after its
    sign around ("-1234 m" -> "-4321 m"); True/False and "normal" unchanged. Its own inverse."""
    if order != "reversed" or text in ("True", "False"):
        return text
    number, _, unit = text.partition(" ")
    sign = number[:1] if number[:1] in "+-" else ""
    body = number[len(sign):][::-1]
    return f"{sign}{body} {unit}" if unit else f"{sign}{body}"


read_answer = write_answer  # reversing twice restores the text


def digit_places(ids: list[int], is_digit, prompt_len: int) -> list[int]:
    """Abacus place of each position (0 = not a digit): in the prompt counted from the last
    digit of each number (1 = units), after it from the first digit of the run."""
    places = [0] * len(ids)
    k = 0
    while k < len(ids):
        if not is_digit[ids[k]]:
            k += 1
            continue
        end = k
        while end < len(ids) and is_digit[ids[end]] and (end < prompt_len) == (k < prompt_len):
            end += 1
        for j in range(k, end):
            places[j] = (end - j) if k < prompt_len else (j - k + 1)
        k = end
    return places


def collate(model: NumericTokenOnlyForCausalLM, problems: list[dict]) -> dict:
    tok = model.numeric_tokenizer
    is_digit = model.is_digit()
    rows, labels, places = [], [], []
    for p in problems:
        prompt = prompt_ids(tok, p["question"])
        answer = tok.encode(write_answer(p["target_text"], model.config.answer_order)) + [tok.eos_id]
        rows.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
        places.append(digit_places(rows[-1], is_digit, len(prompt)))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    place = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, l, d) in enumerate(zip(rows, labels, places)):
        ids[i, :len(r)] = torch.tensor(r)
        lab[i, :len(l)] = torch.tensor(l)
        mask[i, :len(r)] = 1
        place[i, :len(d)] = torch.tensor(d)
    batch = {"input_ids": ids, "attention_mask": mask, "labels": lab}
    if model.config.digit_positions:
        batch["digit_places"] = place
    return batch


def training_loss(model: NumericTokenOnlyForCausalLM, batch: dict) -> torch.Tensor:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                digit_places=batch.get("digit_places"), use_cache=False)
    return out.loss


@torch.no_grad()
def generate_texts(model: NumericTokenOnlyForCausalLM, questions: list[str], max_new: int) -> list[str]:
    """Greedy answers for a batch of questions (left-padded prompts, KV cache)."""
    tok = model.numeric_tokenizer
    device = next(model.parameters()).device
    prompts = [prompt_ids(tok, q) for q in questions]
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), tok.pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(prompts), width), dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, device=device)
        mask[i, width - len(p):] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    abacus = bool(model.config.digit_positions)
    places = None
    if abacus:
        is_digit = model.is_digit()
        places = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            places[i, width - len(p):] = torch.tensor(digit_places(p, is_digit, len(p)), device=device)
    run = torch.zeros(len(prompts), dtype=torch.long, device=device)  # digits written in the current answer run
    digit_ids = torch.tensor(model.digit_ids, device=device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, digit_places=places, use_cache=True)
    past, last_pos = out.past_key_values, pos[:, -1:]
    generated = torch.empty((len(prompts), 0), dtype=torch.long, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    logits = out.logits[:, -1]
    for step in range(max_new):
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, tok.pad_id), nxt)
        generated = torch.cat([generated, nxt[:, None]], dim=1)
        done |= nxt == tok.eos_id
        if bool(done.all()) or step == max_new - 1:
            break
        mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], dim=1)
        last_pos = last_pos + 1
        run = torch.where(torch.isin(nxt, digit_ids), run + 1, torch.zeros_like(run))
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos, past_key_values=past,
                    digit_places=run[:, None] if abacus else None, use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
    return [tok.decode(row.tolist()) for row in generated]


def predict(model: NumericTokenOnlyForCausalLM, problems: list[dict], batch_size: int) -> list[dict]:
    was_training = model.training
    model.eval()
    out: list[dict] = []
    try:
        for start in range(0, len(problems), batch_size):
            chunk = problems[start:start + batch_size]
            texts = generate_texts(model, [p["question"] for p in chunk], int(model.config.max_answer_len))
            for written in texts:
                text = read_answer(written, model.config.answer_order)
                parsed = parse_answer(text)
                out.append({"prediction": parsed["value"] if parsed else None, "prediction_text": text,
                            "unit": parsed["unit"] if parsed else None})
    finally:
        model.train(was_training)
    return out
