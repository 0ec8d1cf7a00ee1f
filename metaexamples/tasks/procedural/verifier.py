"""The procedural verifier: a completion -> Verdict(reward, kind, extracted).

direct answers: the answer read from the text (answers.extract_direct, which ignores echoes of
  the question, negated candidates and hedged replies) equal to the expected one -> correct;
  another -> wrong_answer; none -> no_answer.
programs: the code read from the text (answers.extract_program; none -> no_code) runs as
  solve(problem input) in the sandbox (metaexamples/sandbox: its own process, time, memory
  and output limits, no network, no environment, bubblewrap where it works). A returned value
  that is not the answer (answers.answer_matches: strict types) -> wrong_answer; a failure -> the
  sandbox's status: syntax_error, runtime_error, timeout, memory, output_limit, forbidden. A
  program right on the shown input then runs on each of the problem's hidden inputs (never in
  the prompt; splits.HIDDEN_TESTS of them, same kind and difficulty): right on all of them ->
  correct, else shown_only (a hard-coded answer, or a program that fails or errs on the rest).
Reward: 1.0 for correct, else 0.0.
"""

from __future__ import annotations

from metaexamples.sandbox import Program, Sandbox
from metaexamples.tasks import Verdict
from metaexamples.tasks.procedural.answers import answer_matches, extract_direct, extract_program


def verify_texts(tcfg, rows: list[dict], texts: list[str]) -> list[Verdict]:
    """Verdicts for completions `texts` of problems `rows` (task config `tcfg`), in order;
    programs run in one sandbox, in parallel."""
    if tcfg.answer == "direct":
        out = []
        for row, text in zip(rows, texts):
            got = extract_direct(text, row["kind"], row["question"])
            kind = "no_answer" if got is None else ("correct" if got == row["answer"] else "wrong_answer")
            out.append(Verdict(reward=float(kind == "correct"), kind=kind, extracted=got))
        return out
    codes = [extract_program(text) for text in texts]
    todo = [i for i, code in enumerate(codes) if code is not None]
    shown, hidden_right = {}, {}
    if todo:
        with Sandbox(backend=tcfg.sandbox, timeout_s=float(tcfg.timeout_s), memory_mb=int(tcfg.memory_mb),
                     max_output_bytes=int(tcfg.max_output_bytes), workers=int(tcfg.workers) or None) as box:
            ran = box.run([Program(source=codes[i], entry="solve", args=(rows[i]["input"],)) for i in todo])
            shown = dict(zip(todo, ran))
            # only a program right on the shown input runs on the hidden ones (each input its own run)
            passed = [i for i in todo if shown[i].status == "ok" and answer_matches(shown[i].value, rows[i])]
            calls = [(i, test) for i in passed for test in rows[i]["hidden"]]
            ran = box.run([Program(source=codes[i], entry="solve", args=(test["input"],))
                           for i, test in calls]) if calls else []
            hidden_right = dict.fromkeys(passed, True)
            for (i, test), o in zip(calls, ran):
                ok = o.status == "ok" and answer_matches(o.value, {**rows[i], "answer": test["answer"]})
                hidden_right[i] = hidden_right[i] and ok
    out = []
    for i, row in enumerate(rows):
        if codes[i] is None:
            out.append(Verdict(reward=0.0, kind="no_code", extracted=None))
            continue
        o = shown[i]
        if o.status != "ok":
            kind, extracted = o.status, o.detail
        elif i in hidden_right:
            kind, extracted = ("correct" if hidden_right[i] else "shown_only"), repr(o.value)
        else:
            kind, extracted = "wrong_answer", repr(o.value)
        out.append(Verdict(reward=float(kind == "correct"), kind=kind, extracted=extracted))
    return out
