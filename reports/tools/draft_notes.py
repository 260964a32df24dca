#!/usr/bin/env python3
"""Drafts the `note:` of recorded non-pass verdicts that have none.

    python3 reports/tools/draft_notes.py TARGET REPORT_JSON "BROKER NAME"

TARGET's reports/TARGET/expected.yaml is rewritten in place: every entry
whose verdict is not pass/skipped and that has no note gets one built from
the run's report (`mqtt-conformance run --target ... --out DIR` writes
DIR/report.json): what the case checks (its title) and, per failed step,
what the suite expected and what the broker did, with the rules it breaks.
Entries whose verdict in the report differs from the recorded one are left
alone and listed (a verdict that changes between runs needs a look, not a
draft). Review the drafts: a note explains a deviation, the draft only
states it.
"""
import json
import re
import sys


def sentence(title):
    t = title.strip().rstrip(".")
    return t[0].lower() + t[1:] if t else t


def draft(broker, res):
    parts = []
    for f in res.get("failures", []):
        rules = ", ".join(f.get("rules", [])) or "no rule (set-up)"
        parts.append(
            f"at step {f.get('step')} ({f.get('location')}) the suite expected {f.get('expected')} "
            f"and got {f.get('actual')} ({f.get('observation')}: {rules})"
        )
    for x in res.get("findings", []):
        parts.append(f"the monitors found {x.get('rule')}: {x.get('message', x.get('text', ''))}")
    if not parts:
        parts.append(res.get("reason", ""))
    verdict = res["verdict"]
    lead = {"fail": "breaks this", "inconclusive": "leaves this case inconclusive", "error": "ends this case in an error"}.get(verdict, verdict)
    return f"{broker} {lead}: the case checks that {sentence(res['title'])}; " + "; ".join(parts) + "."


def main():
    target, report, broker = sys.argv[1], sys.argv[2], sys.argv[3]
    results = {r["id"]: r for r in json.load(open(report))["results"]}
    path = f"reports/{target}/expected.yaml"
    lines = open(path).read().split("\n")
    out, i, changed, differ = [], 0, 0, []
    while i < len(lines):
        line = lines[i]
        one = re.match(r"^(mqtt311/\S+): (fail|inconclusive|error)$", line)
        if one:
            # The one-line form of a verdict without rules: make it a block.
            line = f"{one.group(1)}:"
            lines.insert(i + 1, f"  verdict: {one.group(2)}")
        m = re.match(r"^(mqtt311/\S+):$", line)
        if not m:
            out.append(line)
            i += 1
            continue
        cid = m.group(1)
        block = [line]
        i += 1
        while i < len(lines) and lines[i].startswith("  "):
            block.append(lines[i])
            i += 1
        text = "\n".join(block)
        vm = re.search(r"verdict: (\w+)", text)
        if vm and "note:" not in text and vm.group(1) not in ("pass", "skipped"):
            res = results.get(cid)
            if res is None or res["verdict"] != vm.group(1):
                differ.append(f"{cid}: recorded {vm.group(1)}, report {res and res['verdict']}")
            else:
                block.append("  note: " + json.dumps(draft(broker, res), ensure_ascii=False))
                changed += 1
        out.extend(block)
    open(path, "w").write("\n".join(out))
    print(f"{path}: {changed} notes drafted")
    for d in differ:
        print("  not drafted (verdict differs):", d)


if __name__ == "__main__":
    main()
