"""The hybrid model: numbers enter as vectors, not digits. Two number encoders
(`config.encoder`): "features" (FluxEM-like, learned, described below) and "fluxem"
(model=numeric_fluxem: the `fluxem` package's fixed 128-d embedding of each number, and of
each unit word fluxem encodes, projected to the hidden size by one linear map each; type
embeddings text / number / unit; `fluxem_codec`).

Input. The question's numeric spans are found by regex (`numbers.find_number_spans`: signs,
decimals, exponents); each span becomes ONE position holding the <num> placeholder token. Its
input vector is embed(<num>) + encoder(features) + type_embed(number); every other position
is embed(char) + type_embed(text). The encoder is Linear(6, H) -> GELU -> Linear(H, H) over
[sign, is_zero, log10|x|/10, mantissa, is_integer, symlog]: log-magnitude and sign are the
FluxEM coordinates, so a number's vector depends smoothly on its order of magnitude and the
backbone (the same small Llama as the token-only model) sees 10^3 and 10^8 as neighbours along
one axis rather than as unseen digit strings. "=" closes the question; it is the final position.

Outputs (all classification heads are linear on the backbone's hidden states):

- `kind` (final position): arith / convert / can_add; decides how the answer is produced.
- `unit_to` (final position): the answer's unit, over the unit vocabulary (`config.units`).
- `quantity_unit` (at the last character of the unit word after each number, "3.5 km|"): that
  quantity's unit. Being causal, that position has not seen the rest of the question, so the
  source unit of an unseen (from, to) pair is read exactly as in training (a final-position
  source-unit head entangled the two units and failed on held-out pairs).
- can_add, FluxEM-style (dimensions are vectors that get compared, not memorised pairs): each
  unit has a learned distribution over `latent_dimensions` latent kinds, softmax(20 * D[u]),
  and P(can add) = sum_k p_a(k) p_b(k), the probability that both quantities' units fall in the
  same kind; trained by binary cross-entropy with the true units, predicted from the units the
  `quantity_unit` head reads, answer P > 0.5. (A final-position boolean head memorised pairs:
  78-95% on the held-out combinations in our runs; this: 100%.)
- the number, by `config.readout`:
  - "regression" (default, model=numeric_hybrid): the learned numeric head. From the final
    position, sign classes (-, 0, +) and a regression of log10|answer| (smooth L1); answer =
    sign * 10^log, rounded to an integer when all operands are integers (conversions: the
    value in the unit the `unit_to` head picks). Every digit of the answer comes out of the
    network, so exact match needs the regression to be exact to ~1e-(digits) in log space,
    and it generalises across magnitudes only as far as the MLP extrapolates on the
    log-magnitude features.
  - "log_linear" (model=numeric_hybrid_log_linear): the same sign classes and smooth-L1
    regression of log10|answer|, with the regressed value anchored on the operands: log10|answer|
    = beta + sum_i alpha_i * log10|x_i|, beta from the final position and one coefficient alpha_i
    per number from that number's own position (FluxEM's observation: products are sums in log
    space). Still a learned regression (alpha and beta are continuous outputs, nothing is
    classified or evaluated symbolically; sums are only approximated), but its output moves
    with the operands' magnitudes, so it can extrapolate beyond the training magnitudes where
    the plain head saturates. With alpha near 1, a product's value is close to exact, so
    its relative error on products measures how precisely it learned alpha.
  - "algebraic" (model=numeric_hybrid_algebraic): a *structured readout*, not a learned
    numeric head. A `route` head on each number's own position classifies how that number
    enters the answer: starts a new + term, starts a new - term, or multiplies into the
    current term. The answer is then computed exactly (in `decimal`) from the parsed span
    values with those roles: the model learns the *structure* (precedence, signs) and the
    arithmetic itself is left to exact computation, which is why it is exact at any magnitude
    and length once the roles are right. Conversions apply a unit table to the value:
    base = x * 10^s[u] + o[u] per unit (relative to an arbitrary base per dimension), so
    y = (x * 10^s[from] + o[from] - o[to]) * 10^-s[to], `from` read by `quantity_unit`, `to` by
    `unit_to`. The table is *fitted* from the training conversions, not looked up:
    `training_loss` adds each conversion to per-(from, to) running sums of (1, x, y, x^2, xy)
    (float64 buffers, like BatchNorm's running statistics; no gradient) and `fit_unit_table`
    solves each pair's slope and intercept, then by least squares s_from - s_to =
    log10(slope) and o_from - o_to = 10^s_to * intercept over all pairs (minimum norm fixes
    each dimension's free base; intercepts below the data's 12-digit precision count as 0).
    An unseen pair composes from its two units' rows. (A table trained by gradient descent
    reached only ~1e-2 relative error in minutes and drifted on the affine temperature
    offsets.) The table is refitted whenever the state dict is read (saving, checkpoints).

  - "fluxem" (model=numeric_fluxem, needs encoder "fluxem"): FluxEM in, FluxEM out. The same
    `route` head as "algebraic" says how each number's embedding enters the answer; the
    answer's embedding is then built by fluxem's algebra from the operands' fluxem embeddings
    (products in its log-magnitude coordinates, sums in its linear one) and decoded by fluxem
    (`fluxem_codec.compose`; rounded to an integer when all operands are integers). What is
    learned is the structure; the values come from fluxem's float32 embedding algebra, so they
    are exact only to about 7 significant digits (beyond ~10^6 a result is close, not exact).
    Conversions: the value's embedding times the ratio of the two units' fluxem SI factors
    (`fluxem_codec.convert`; units read by `quantity_unit` and `unit_to`); for units fluxem
    does not encode (degC, degF: affine) the fitted unit table of "algebraic" is used.
    can_add: fluxem compares the SI dimensions decoded from the two units' embeddings (units
    read by `quantity_unit`; `fluxem_codec.same_dimensions`); the learned latent kinds
    below only where fluxem encodes a unit not (degC, degF).

Loss: the sum of the mean cross-entropies (kind, quantity_unit, unit_to, and route or sign),
the can_add binary cross-entropy and, for "regression", smooth L1 on log10|answer|.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, localcontext

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaModel, PreTrainedModel
from transformers.utils import ModelOutput

from metaexamples.models.numeric import fluxem_codec
from metaexamples.models.numeric.config import NumericHybridConfig
from metaexamples.models.numeric.numbers import find_number_spans, number_features
from metaexamples.models.numeric.text import decimal_text, format_number, read_question
from metaexamples.models.numeric.tokenizer import CharTokenizer

KINDS = ("arith", "convert", "can_add")
ROUTES = ("new_plus", "new_minus", "mul")
ROUTE_OF_OP = {"+": 0, "-": 1, "*": 2}
SEP = "="
UNIT_KIND_SCALE = 20.0
_UNIT_AFTER = re.compile(r"\s+[A-Za-z][A-Za-z_/]*")


@dataclass
class NumericHybridOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None
    kind_logits: torch.Tensor | None = None
    quantity_unit_logits: torch.Tensor | None = None
    unit_to_logits: torch.Tensor | None = None
    route_logits: torch.Tensor | None = None
    value_out: torch.Tensor | None = None


class NumericHybridModel(PreTrainedModel):
    config_class = NumericHybridConfig
    base_model_prefix = "numeric_hybrid"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: NumericHybridConfig):
        super().__init__(config)
        h, n_units = config.hidden_size, len(config.units)
        self.backbone = LlamaModel(config)
        self.fluxem = config.encoder == "fluxem"
        self.type_embed = nn.Embedding(3 if self.fluxem else 2, h)  # text, number (, unit)
        if self.fluxem:  # fixed fluxem embeddings, one linear projection each to the hidden size
            self.num_encoder = nn.Linear(fluxem_codec.DIM, h)
            self.unit_encoder = nn.Linear(fluxem_codec.DIM, h)
        else:
            self.num_encoder = nn.Sequential(nn.Linear(config.num_features, h), nn.GELU(), nn.Linear(h, h))
        self.input_dropout = nn.Dropout(float(config.dropout))
        self.structured = config.readout in ("algebraic", "fluxem")  # route head + unit table
        self.kind_head = nn.Linear(h, len(KINDS))
        self.unit_kind = nn.Parameter(torch.zeros(n_units, config.latent_dimensions))
        self.quantity_unit_head = nn.Linear(h, n_units)
        self.unit_to_head = nn.Linear(h, n_units)
        if self.structured:
            self.route_head = nn.Linear(h, len(ROUTES))
            self.register_buffer("pair_stats", torch.zeros(n_units, n_units, 5, dtype=torch.float64))
            self.register_buffer("unit_log_scale", torch.zeros(n_units, dtype=torch.float64))
            self.register_buffer("unit_offset", torch.zeros(n_units, dtype=torch.float64))
            self._table_stale = False
        else:
            self.value_head = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, 4))
        if config.readout == "log_linear":
            self.coef_head = nn.Linear(h, 1)  # alpha_i of each number, on its own position
        self.numeric_tokenizer = CharTokenizer(config.chars)
        self.unit_index = {u: i for i, u in enumerate(config.units)}
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if module is self:
            with torch.no_grad():
                self.unit_kind.normal_(0.0, 0.05)
        if module is self and self.structured:
            with torch.no_grad():
                self.pair_stats.zero_()
                self.unit_log_scale.zero_()
                self.unit_offset.zero_()

    def save_pretrained(self, save_directory, *args, **kwargs):
        if self.structured:
            self.unit_table()  # refit from the statistics so the saved table is current
        super().save_pretrained(save_directory, *args, **kwargs)
        self.numeric_tokenizer.save_pretrained(save_directory)

    def state_dict(self, *args, **kwargs):
        """The weights and buffers, with the unit table refitted first if training added data,
        so every saved copy (save_pretrained, the trainer's checkpoints and export, which read
        the state dict of the module wrapping this one) holds the current table."""
        if getattr(self, "_table_stale", False):
            self.fit_unit_table()
        return super().state_dict(*args, **kwargs)

    def forward(self, input_ids, attention_mask, num_features, num_mask, unit_features=None, unit_mask=None,
                **_) -> NumericHybridOutput:
        is_num = num_mask.to(self.type_embed.weight.dtype)
        types = num_mask.long()
        if unit_mask is not None:
            types = types + 2 * unit_mask.long()
        emb = self.backbone.embed_tokens(input_ids) + self.type_embed(types)
        emb = emb + is_num.unsqueeze(-1) * self.num_encoder(num_features.to(emb.dtype))
        if unit_features is not None:
            emb = emb + unit_mask.to(emb.dtype).unsqueeze(-1) * self.unit_encoder(unit_features.to(emb.dtype))
        emb = self.input_dropout(emb)
        hidden = self.backbone(inputs_embeds=emb, attention_mask=attention_mask, use_cache=False).last_hidden_state
        last = attention_mask.long().sum(1) - 1
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return NumericHybridOutput(
            last_hidden_state=hidden, kind_logits=self.kind_head(final), 
            quantity_unit_logits=self.quantity_unit_head(hidden), unit_to_logits=self.unit_to_head(final),
            route_logits=self.route_head(hidden) if self.structured else None,
            value_out=self._value(hidden, final, num_features, num_mask) if not self.structured else None)

    def _value(self, hidden, final, num_features, num_mask) -> torch.Tensor:
        """[sign logits (3), log10|answer|]: regressed from the final position ("regression"), or
        ("log_linear") log10|answer| = beta + sum_i alpha_i * log10|x_i| over the question's
        numbers, beta from the final position and alpha_i from number i's own position."""
        out = self.value_head(final)
        if self.config.readout != "log_linear":
            return out
        if self.fluxem:
            log_x = fluxem_codec.log10_abs(num_features).to(hidden.dtype)
        else:
            log_x = 10.0 * num_features[..., 2].to(hidden.dtype)  # feature 2 = log10|x| / 10 (0 for x = 0)
        alpha = self.coef_head(hidden).squeeze(-1)
        anchored = (alpha * log_x * num_mask.to(hidden.dtype)).sum(1)
        return torch.cat([out[:, :3], (out[:, 3] + anchored)[:, None]], dim=1)

    @torch.no_grad()
    def accumulate_unit_stats(self, x: torch.Tensor, unit_from: torch.Tensor, unit_to: torch.Tensor,
                              y: torch.Tensor) -> None:
        """Add conversions (value x in unit_from -> y in unit_to) to the running sums."""
        x, y = x.double(), y.double()
        rows = torch.stack([torch.ones_like(x), x, y, x * x, x * y], dim=1)
        self.pair_stats.index_put_((unit_from, unit_to), rows, accumulate=True)
        self._table_stale = True

    @torch.no_grad()
    def fit_unit_table(self) -> None:
        """Least-squares (log-scale, offset) per unit from the accumulated pair statistics."""
        import numpy as np

        stats = self.pair_stats.detach().cpu().numpy()
        n_units = stats.shape[0]
        scale_rows, scale_rhs, pairs = [], [], []
        for f in range(n_units):
            for t in range(n_units):
                n, sx, sy, sxx, sxy = stats[f, t]
                if f == t or n < 2:
                    continue
                var = sxx / n - (sx / n) ** 2
                if var <= 1e-12 * max(sxx / n, 1e-300):
                    continue
                slope = (sxy / n - (sx / n) * (sy / n)) / var
                if not np.isfinite(slope) or slope <= 0:
                    continue
                row = np.zeros(n_units)
                row[f], row[t] = 1.0, -1.0
                scale_rows.append(row)
                scale_rhs.append(np.log10(slope))
                intercept, mean_y = sy / n - slope * sx / n, abs(sy / n)
                if abs(intercept) <= 1e-9 * mean_y:  # below the data's precision (12 digits): zero
                    intercept = 0.0
                pairs.append((f, t, intercept, mean_y))
        if not pairs:
            return
        a = np.array(scale_rows)
        scale = np.linalg.lstsq(a, np.array(scale_rhs), rcond=None)[0]
        # o_from - o_to = 10^s_to * intercept, each equation weighted by 1 / (its pair's mean |y| in
        # base units): an intercept is only as precise as the magnitudes it was fitted on.
        weight = np.array([1.0 / max(10.0 ** scale[t] * mean_y, 1e-300) for f, t, _, mean_y in pairs])
        offset_rhs = np.array([10.0 ** scale[t] * intercept for f, t, intercept, _ in pairs])
        offset = np.linalg.lstsq(a * weight[:, None], offset_rhs * weight, rcond=None)[0]
        self.unit_log_scale.copy_(torch.from_numpy(scale))
        self.unit_offset.copy_(torch.from_numpy(offset))
        self._table_stale = False

    def same_kind_probability(self, unit_a: torch.Tensor, unit_b: torch.Tensor) -> torch.Tensor:
        """P(the two units are of one latent kind), i.e. can be added."""
        kinds = torch.softmax(UNIT_KIND_SCALE * self.unit_kind.float(), dim=-1)
        return (kinds[unit_a] * kinds[unit_b]).sum(-1)

    def convert_value(self, x: float, unit_from: int, unit_to: int) -> float:
        """x in unit `unit_from` -> unit `unit_to` (indices) with the fitted table."""
        scale, offset = self.unit_table()
        s_f, s_t, o_f, o_t = (float(v) for v in (scale[unit_from], scale[unit_to], offset[unit_from], offset[unit_to]))
        return (x * 10.0 ** s_f + o_f - o_t) * 10.0 ** -s_t

    def unit_table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(log10 scale, offset) per unit (float64), refitted first if training added data."""
        if getattr(self, "_table_stale", False):
            self.fit_unit_table()
        return self.unit_log_scale, self.unit_offset


# -- batches ---------------------------------------------------------------------------------
def encode_question(tok: CharTokenizer, question: str) -> tuple[list[int], list[int], list[Decimal], list]:
    """ids ("<bos>" + question with each number span as one <num> + "="), the positions of the
    <num> tokens, the exact values of the spans, and for each number the position of the last
    character of the unit word right after it (None if there is none)."""
    ids, positions, values, pos = [tok.bos_id], [], [], 0
    char_at: dict[int, int] = {}  # question char index -> position in ids

    def add_text(a: int, b: int) -> None:
        for k in range(a, b):
            char_at[k] = len(ids)
            ids.extend(tok.encode(question[k]))

    spans = find_number_spans(question)
    for start, end, text in spans:
        add_text(pos, start)
        positions.append(len(ids))
        ids.append(tok.num_id)
        values.append(Decimal(text))
        pos = end
    add_text(pos, len(question))
    ids += tok.encode(SEP)
    unit_slots = []
    for _, end, _ in spans:
        m = _UNIT_AFTER.match(question, end)
        unit_slots.append(char_at[m.end() - 1] if m else None)
    return ids, positions, values, unit_slots


_UNIT_WORD = re.compile(r"[A-Za-z][A-Za-z_/]*")


def unit_slots(question: str, units) -> list[tuple[int, str]]:
    """(index of the last character, unit) of each word of `question` that is a known unit."""
    return [(m.end() - 1, m.group()) for m in _UNIT_WORD.finditer(question) if m.group() in units]


def _encode_batch(model: NumericHybridModel, questions: list[str]) -> tuple[dict, list]:
    tok = model.numeric_tokenizer
    encoded = [encode_question(tok, q) for q in questions]
    width = max(len(e[0]) for e in encoded)
    b = len(encoded)
    ids = torch.full((b, width), tok.pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    feats = torch.zeros((b, width, model.config.num_features), dtype=torch.float32)
    num_mask = torch.zeros((b, width), dtype=torch.bool)
    for i, (row, positions, values, _) in enumerate(encoded):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        for p, v in zip(positions, values):
            feats[i, p] = torch.tensor(fluxem_codec.number_embedding(v)) if model.fluxem \
                else torch.tensor(number_features(v))
            num_mask[i, p] = True
    batch = {"input_ids": ids, "attention_mask": mask, "num_features": feats, "num_mask": num_mask}
    if model.fluxem:
        unit_feats = torch.zeros((b, width, fluxem_codec.DIM), dtype=torch.float32)
        unit_mask = torch.zeros((b, width), dtype=torch.bool)
        for i, (q, (row, *_)) in enumerate(zip(questions, encoded)):
            positions = _char_positions(q, row, tok)
            for end, unit in unit_slots(q, model.unit_index):
                emb = fluxem_codec.unit_embedding(unit)
                if emb is not None:
                    unit_feats[i, positions[end]] = torch.tensor(emb)
                    unit_mask[i, positions[end]] = True
        batch.update(unit_features=unit_feats, unit_mask=unit_mask)
    return batch, encoded


def _char_positions(question: str, ids: list[int], tok: CharTokenizer) -> dict[int, int]:
    """Question character index -> its position in `ids` (characters outside number spans)."""
    out, pos, k = {}, 1, 0  # ids[0] is <bos>
    for start, end, _ in find_number_spans(question):
        for c in range(k, start):
            out[c] = pos
            pos += 1
        pos += 1  # the span's <num>
        k = end
    for c in range(k, len(question)):
        out[c] = pos
        pos += 1
    return out


def collate(model: NumericHybridModel, problems: list[dict]) -> dict:
    batch, encoded = _encode_batch(model, [p["question"] for p in problems])
    b, width = batch["input_ids"].shape
    kind = torch.tensor([KINDS.index(p["kind"]) for p in problems], dtype=torch.long)
    bool_label = torch.full((b,), -100, dtype=torch.long)
    add_units = torch.full((b, 2), -100, dtype=torch.long)
    unit_from = torch.full((b,), -100, dtype=torch.long)
    quantity_unit = torch.full((b, width), -100, dtype=torch.long)
    unit_to = torch.full((b,), -100, dtype=torch.long)
    route = torch.full((b, width), -100, dtype=torch.long)
    x = torch.zeros(b, dtype=torch.float64)
    y = torch.zeros(b, dtype=torch.float64)
    for i, (p, (_, positions, values, slots)) in enumerate(zip(problems, encoded)):
        q = read_question(p["question"])
        quantity_units = [q["from"]] if q["kind"] == "convert" else q["units"] if q["kind"] == "can_add" else []
        if len(slots) == len(quantity_units):
            for slot, unit in zip(slots, quantity_units):
                if slot is not None:
                    quantity_unit[i, slot] = model.unit_index.get(unit, -100)
        if p["kind"] == "can_add":
            bool_label[i] = int(bool(p["target"]))
            ids = [model.unit_index.get(u, -100) for u in q["units"]]
            if min(ids) >= 0:
                add_units[i] = torch.tensor(ids)
            continue
        y[i] = float(p["target"])
        routes = [0] + [ROUTE_OF_OP[op] for op in q["ops"]] if q["kind"] == "arith" else [0]
        if len(routes) == len(positions):
            for pos, r in zip(positions, routes):
                route[i, pos] = r
        if q["kind"] == "convert":
            x[i] = float(q["value"])
            unit_from[i] = model.unit_index.get(q["from"], -100)
            unit_to[i] = model.unit_index.get(q["to"], -100)
    batch.update(kind=kind, bool_label=bool_label, add_units=add_units, unit_from=unit_from, unit_to=unit_to, route=route,
                 quantity_unit=quantity_unit,
                 value_x=x, target=y)
    return batch


def _ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labels != -100; a graph-connected zero when there are none."""
    if bool((labels != -100).any()):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
    return logits.sum() * 0.0


def training_loss(model: NumericHybridModel, batch: dict) -> torch.Tensor:
    out = model(batch["input_ids"], batch["attention_mask"], batch["num_features"], batch["num_mask"],
                batch.get("unit_features"), batch.get("unit_mask"))
    add = (batch["add_units"] >= 0).all(-1) & (batch["bool_label"] >= 0)
    if bool(add.any()):
        p_add = model.same_kind_probability(batch["add_units"][add, 0], batch["add_units"][add, 1])
        add_loss = F.binary_cross_entropy(p_add.clamp(1e-6, 1 - 1e-6), batch["bool_label"][add].float())
    else:
        add_loss = model.unit_kind.sum() * 0.0
    loss = (_ce(out.kind_logits, batch["kind"]) + add_loss
            + _ce(out.quantity_unit_logits, batch["quantity_unit"]) + _ce(out.unit_to_logits, batch["unit_to"]))
    numeric = batch["kind"] != KINDS.index("can_add")
    y = batch["target"].double()
    if model.structured:
        loss = loss + _ce(out.route_logits, batch["route"])
        conv = (batch["unit_from"] >= 0) & (batch["unit_to"] >= 0)
        if model.training and bool(conv.any()):
            model.accumulate_unit_stats(batch["value_x"][conv], batch["unit_from"][conv], batch["unit_to"][conv],
                                        y[conv])
    else:
        v = out.value_out
        sign = torch.where(y > 0, 2, torch.where(y < 0, 0, 1)).long()
        loss = loss + _ce(v[:, :3], torch.where(numeric, sign, torch.full_like(sign, -100)))
        nonzero = numeric & (y != 0)
        if bool(nonzero.any()):
            target_log = torch.log10(y[nonzero].abs()).float()
            loss = loss + F.smooth_l1_loss(v[nonzero, 3].float(), target_log)
        else:
            loss = loss + v[:, 3].sum() * 0.0
    return loss


# -- prediction ------------------------------------------------------------------------------
def _algebra(values: list[Decimal], routes: list[int]) -> Decimal:
    """Sum of signed products as routed (the first number always starts a + term)."""
    with localcontext() as ctx:
        ctx.prec = 400
        total, term, sign = Decimal(0), None, 1
        for k, (v, r) in enumerate(zip(values, routes)):
            if k == 0 or r != 2:
                if term is not None:
                    total += sign * term
                term, sign = v, (-1 if (k > 0 and r == 1) else 1)
            else:
                term = term * v
        return total + sign * term


def predict(model: NumericHybridModel, problems: list[dict], batch_size: int) -> list[dict]:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    units = list(model.config.units)
    out: list[dict] = []
    try:
        for start in range(0, len(problems), batch_size):
            chunk = problems[start:start + batch_size]
            batch, encoded = _encode_batch(model, [p["question"] for p in chunk])
            with torch.no_grad():
                res = model(**{k: v.to(device) for k, v in batch.items()})
                kinds = res.kind_logits.argmax(-1).tolist()
                q_units = res.quantity_unit_logits.argmax(-1).tolist()
                u_to = res.unit_to_logits.argmax(-1)
                routes = res.route_logits.argmax(-1).tolist() if res.route_logits is not None else None
                if not model.structured:
                    v = res.value_out.float().cpu()
                    signs, logs = v[:, :3].argmax(-1).tolist(), v[:, 3].tolist()
            for i, (_, positions, values, slots) in enumerate(encoded):
                kind = KINDS[kinds[i]]
                if kind == "can_add":
                    filled = [sl for sl in slots if sl is not None]
                    if len(filled) < 2:
                        out.append({"prediction": None, "prediction_text": "", "unit": None})
                        continue
                    ua, ub = q_units[i][filled[0]], q_units[i][filled[1]]
                    ok = None
                    if model.config.readout == "fluxem":  # fluxem compares the two units' dimension vectors
                        ok = fluxem_codec.same_dimensions(units[ua], units[ub])
                    if ok is None:
                        ok = bool(model.same_kind_probability(torch.tensor([ua]), torch.tensor([ub])).item() > 0.5)
                    out.append({"prediction": ok, "prediction_text": str(ok), "unit": None})
                    continue
                if not values:
                    out.append({"prediction": None, "prediction_text": "", "unit": None})
                    continue
                integral = all(v == v.to_integral_value() for v in values)
                if model.structured:
                    roles = [routes[i][p] for p in positions]
                    if model.config.readout == "fluxem":  # fluxem's algebra on the operands' embeddings
                        y = fluxem_codec.decode(fluxem_codec.compose(values, roles))
                        exact = Decimal(round(y)) if integral and math.isfinite(y) else Decimal(repr(y))
                    else:
                        exact = _algebra(values, roles)
                    if kind == "arith":
                        out.append({"prediction": float(exact), "prediction_text": decimal_text(exact), "unit": None})
                        continue
                    t = int(u_to[i])
                    slot = next((sl for sl in slots if sl is not None), None)
                    if slot is None:  # a conversion needs the source quantity's unit
                        out.append({"prediction": None, "prediction_text": "", "unit": units[t]})
                        continue
                    f = q_units[i][slot]
                    y = None
                    if model.config.readout == "fluxem":
                        y = fluxem_codec.convert(values[0], units[f], units[t])
                    if y is None:  # algebraic, or a unit fluxem does not encode: the fitted table
                        y = model.convert_value(float(exact), f, t)
                else:
                    y = [-1.0, 0.0, 1.0][signs[i]] * 10.0 ** min(logs[i], 300.0)
                    if kind == "arith":
                        if integral:
                            y = float(round(y))
                            text = str(int(y))
                        else:
                            text = format_number(y)
                        out.append({"prediction": y, "prediction_text": text, "unit": None})
                        continue
                    t = int(u_to[i])
                unit = units[t]
                if not math.isfinite(y):
                    out.append({"prediction": None, "prediction_text": "", "unit": unit})
                    continue
                out.append({"prediction": y, "prediction_text": f"{format_number(y)} {unit}", "unit": unit})
    finally:
        model.train(was_training)
    return out
