"""The procedural verifier: a completion -> Verdict(reward, kind, extracted).

direct answers: the answer read from the text (answers.extract_direct) equal to the expected
  one -> correct; another -> wrong_answer; none -> no_answer.
programs: the code read from the text (answers.extract_program; none -> no_code) runs as
  solve(problem input) in the sandbox (metaexamples/sandbox: its own process, time, memory
  and output limits, no network, no environment, bubblewrap where it works). A returned
  value equal to the answer (answers.answer_matches: strict types) -> correct, another ->
  wrong_answer; otherwise the sandbox's status: syntax_error, runtime_error, timeout, memory,
  output_limit, forbidden.
Reward: 1.0 for correct, else 0.0.
"""

from __future__ import annotations

from metaexamples.tasks import Verdict
from metaexamples.tasks.procedural.answers import answer_matches, extract_direct, extract_program


def verify_texts(tcfg, rows: list[dict], texts: list[str]) -> list[Verdict]:
    """Verdicts for completions `texts` of problems `rows` (task config `tcfg`), in order;
    programs run in one sandbox, in parallel."""
    if tcfg.answer == "direct":
        out = []
        for row, text in zip(rows, texts):
            got = extract_direct(text, row["kind"])
            kind = "no_answer" if got is None else ("correct" if got == row["answer"] else "wrong_answer")
            out.append(Verdict(reward=float(kind == "correct"), kind=kind, extracted=got))
        return out
    from metaexamples.sandbox import Program, Sandbox

    codes = [extract_program(text) for text in texts]
    todo = [i for i, code in enumerate(codes) if code is not None]
    outcomes = {}
    if todo:
        with Sandbox(backend=tcfg.sandbox, timeout_s=float(tcfg.timeout_s), memory_mb=int(tcfg.memory_mb),
                     max_output_bytes=int(tcfg.max_output_bytes), workers=int(tcfg.workers) or None) as box:
            ran = box.run([Program(source=codes[i], entry="solve", args=(rows[i]["input"],)) for i in todo])
        outcomes = dict(zip(todo, ran))
    out = []
    for i, row in enumerate(rows):
        if codes[i] is None:
            out.append(Verdict(reward=0.0, kind="no_code", extracted=None))
            continue
        o = outcomes[i]
        if o.status == "ok":
            kind = "correct" if answer_matches(o.value, row) else "wrong_answer"
            extracted = repr(o.value)
        else:
            kind, extracted = o.status, o.detail
        out.append(Verdict(reward=float(kind == "correct"), kind=kind, extracted=extracted))
    return out
