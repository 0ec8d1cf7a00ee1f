"""The token-only baseline: a small character-level Llama that reads "<bos>{question}=" and
writes the answer text ("2427", "3500 m", "True") character by character, then <eos>.

Training: next-token cross-entropy on the answer characters and the <eos> only (the question
is context, label -100). Prediction: batched greedy decoding with the KV cache from left-padded
prompts, at most `config.max_answer_len` characters; the text is read back with the task's
`parse_answer` (a number, optionally followed by a unit; or True/False)."""

from __future__ import annotations

import torch
from transformers import LlamaForCausalLM

from metaexamples.models.numeric.config import NumericTokenOnlyConfig
from metaexamples.models.numeric.tokenizer import CharTokenizer

SEP = "="


class NumericTokenOnlyForCausalLM(LlamaForCausalLM):
    config_class = NumericTokenOnlyConfig

    def __init__(self, config: NumericTokenOnlyConfig):
        super().__init__(config)
        self.numeric_tokenizer = CharTokenizer(config.chars)

    def save_pretrained(self, save_directory, *args, **kwargs):
        super().save_pretrained(save_directory, *args, **kwargs)
        self.numeric_tokenizer.save_pretrained(save_directory)


def prompt_ids(tok: CharTokenizer, question: str) -> list[int]:
    return [tok.bos_id] + tok.encode(question + SEP)


def collate(model: NumericTokenOnlyForCausalLM, problems: list[dict]) -> dict:
    tok = model.numeric_tokenizer
    rows, labels = [], []
    for p in problems:
        prompt = prompt_ids(tok, p["question"])
        answer = tok.encode(p["target_text"]) + [tok.eos_id]
        rows.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, l) in enumerate(zip(rows, labels)):
        ids[i, :len(r)] = torch.tensor(r)
        lab[i, :len(l)] = torch.tensor(l)
        mask[i, :len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab}


def training_loss(model: NumericTokenOnlyForCausalLM, batch: dict) -> torch.Tensor:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"],
                use_cache=False)
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
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
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
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos, past_key_values=past,
                    use_cache=True)
        past, logits = out.past_key_values, out.logits[:, -1]
    return [tok.decode(row.tolist()) for row in generated]


def predict(model: NumericTokenOnlyForCausalLM, problems: list[dict], batch_size: int) -> list[dict]:
    from metaexamples.tasks.numeric.data import parse_answer

    was_training = model.training
    model.eval()
    out: list[dict] = []
    try:
        for start in range(0, len(problems), batch_size):
            chunk = problems[start:start + batch_size]
            texts = generate_texts(model, [p["question"] for p in chunk], int(model.config.max_answer_len))
            for text in texts:
                parsed = parse_answer(text)
                out.append({"prediction": parsed["value"] if parsed else None, "prediction_text": text,
                            "unit": parsed["unit"] if parsed else None})
    finally:
        model.train(was_training)
    return out
