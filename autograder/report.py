"""What a grading run hands out: feedback pages, grade CSVs and the class summary."""

from __future__ import annotations

import collections
import csv
import html
import json
import re
import statistics
from pathlib import Path

import nbformat

PART_HEADING = re.compile(r"^#+\s*(Part\s+\w+)", re.MULTILINE)
# Student ids, names, file names, review reasons and check messages all carry text a student
# chose. Every writer below passes it through one of these, so it reaches people as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")
MAX_TEXT = 600


def one_line(text) -> str:
    """Any value as one line of at most MAX_TEXT characters (a crafted error may hold newlines)."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_TEXT else line[:MAX_TEXT] + "..."


def csv_text(text) -> str:
    """A CSV cell a spreadsheet shows as text: never a formula (=, +, -, @ ... at its start)."""
    line = one_line(text)
    return "'" + line if line.startswith(FORMULA_START) else line


def markdown_text(text) -> str:
    """Text inside summary.md: no HTML (escaped), no Markdown markup (backslash-escaped)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(one_line(text), quote=False))


def parts_of(release_notebook: Path) -> dict[str, str]:
    """grade_id -> the part ("Part A") whose heading precedes it in the notebook."""
    notebook = nbformat.read(release_notebook, as_version=4)
    part, parts = "Other", {}
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            found = PART_HEADING.search(cell.source)
            if found:
                part = found.group(1)
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            parts[meta["grade_id"]] = part
    return parts


def feedback_html(record: dict, assignment: str) -> str:
    """One student's feedback: each autograded check, passed or why not with a hint; no test code."""
    def escape(text) -> str:
        return html.escape(one_line(text))

    rows, by_part = [], {}
    for grade in record["grades"]:
        part = by_part.setdefault(grade["part"], [0.0, 0.0, 0])
        part[1] += grade["max_score"]
        if grade["score"] is None:
            part[2] += 1
        else:
            part[0] += grade["score"]
        if grade["kind"] != "autograded":
            continue
        if grade["passed"]:
            verdict, detail = "passed", ""
        else:
            verdict = "failed"
            detail = escape(grade.get("message") or "") + (
                f"<br><em>Hint:</em> {escape(grade['hint'])}" if grade.get("hint") else "")
        rows.append(f"<tr class='{verdict}'><td>{escape(grade['part'])}</td><td><code>{escape(grade['grade_id'])}"
                    f"</code></td><td>{grade['score']:g} / {grade['max_score']:g}</td>"
                    f"<td>{verdict}</td><td>{detail}</td></tr>")
    parts = "".join(
        f"<li>{escape(name)}: {score:g} / {maximum:g}"
        + (f" ({pending} answer(s) still to be read by a grader)" if pending else "") + "</li>"
        for name, (score, maximum, pending) in sorted(by_part.items()))
    notes = "".join(f"<li>{escape(reason)}</li>" for reason in record["reasons"])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{escape(assignment)}: feedback for {escape(record['student'])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}} td,th{{padding:.3em .6em;text-align:left;vertical-align:top}}
tr.passed td:nth-child(4){{color:#176f2c}} tr.failed td:nth-child(4){{color:#b00020;font-weight:bold}}
table{{border-collapse:collapse}} tr{{border-bottom:1px solid #ddd}}</style></head>
<body><h1>{escape(assignment)}</h1><p>Feedback for <strong>{escape(record.get('name', record['student']))}</strong>.
Autograded score: <strong>{record['auto_score']:g} / {record['auto_max']:g}</strong>.</p>
<h2>Parts</h2><ul>{parts}</ul>
{'<h2>Notes on your submission</h2><ul>' + notes + '</ul>' if notes else ''}
<h2>Autograded checks</h2>
<p>Each check ran your classes on inputs chosen at grading time and compared the result with
what a correct implementation gives.</p>
<table><tr><th>part</th><th>check</th><th>points</th><th>result</th><th>what went wrong</th></tr>
{''.join(rows)}</table></body></html>
"""


def write_grades(records: list[dict], folder: Path) -> None:
    """grades.csv (a row per student, a column per part) and grades_by_check.csv (long format)."""
    parts = sorted({g["part"] for r in records for g in r["grades"]})
    with open(folder / "grades.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "name", "status", *map(csv_text, parts), "autograded", "autograded_max",
                         "manual_pending", "total_so_far", "max", "review_reasons"])
        for record in records:
            per_part = {p: sum(g["score"] or 0 for g in record["grades"] if g["part"] == p) for p in parts}
            pending = sum(1 for g in record["grades"] if g["score"] is None)
            writer.writerow([csv_text(record["student"]), csv_text(record.get("name", record["student"])),
                             record["status"], *[f"{per_part[p]:g}" for p in parts],
                             f"{record['auto_score']:g}", f"{record['auto_max']:g}", pending,
                             f"{sum(per_part.values()):g}", f"{record['max_score']:g}",
                             csv_text("; ".join(record["reasons"]))])
    with open(folder / "grades_by_check.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["student", "part", "grade_id", "kind", "score", "max_score", "passed", "message"])
        for record in records:
            for g in record["grades"]:
                writer.writerow([csv_text(record["student"]), csv_text(g["part"]), csv_text(g["grade_id"]),
                                 g["kind"], "" if g["score"] is None else f"{g['score']:g}", f"{g['max_score']:g}",
                                 "" if g["passed"] is None else int(g["passed"]), csv_text(g.get("message", ""))])


def write_summary(records: list[dict], folder: Path, assignment: str, run_info: dict) -> dict:
    """summary.json, summary.md and score_distribution.png for the class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [r["auto_score"] for r in records]
    auto_max = max((r["auto_max"] for r in records), default=0)
    checks: dict[str, list[bool]] = {}
    for record in records:
        if record["gradable"]:
            for g in record["grades"]:
                if g["kind"] == "autograded":
                    checks.setdefault(g["grade_id"], []).append(bool(g["passed"]))
    pass_rates = {grade_id: sum(v) / len(v) for grade_id, v in checks.items()}
    review = [{"student": r["student"], "name": r.get("name", r["student"]), "status": r["status"],
               "reasons": r["reasons"]} for r in records if r["reasons"] or not r["gradable"]]

    def named(r: dict) -> str:
        return f" ({markdown_text(r['name'])})" if r["name"] != r["student"] else ""

    summary = {
        "assignment": assignment, "students": len(records),
        "graded": sum(r["gradable"] for r in records),
        "autograded_max": auto_max,
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        "pass_rate_per_check": pass_rates, "needs_review": review,
        "outputs_shown": dict(collections.Counter(r["outputs"] for r in records if r.get("outputs"))),
        **run_info,
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.hist(scores, bins=range(0, int(auto_max) + 2), align="left", rwidth=0.85, color="#3b6ea8")
    axis.set_xlabel(f"autograded score (of {auto_max:g})")
    axis.set_ylabel("students")
    axis.set_title(f"{assignment}: {len(records)} submissions")
    figure.tight_layout()
    figure.savefig(folder / "score_distribution.png", dpi=100)
    plt.close(figure)
    lines = [f"# {assignment}: class summary", "",
             f"{summary['students']} submissions, {summary['graded']} gradable; autograded mean "
             f"{summary['mean'] or 0:.2f}, median {summary['median'] or 0:g} of {auto_max:g}. "
             f"Sandbox isolation: {run_info.get('isolation')}. Outputs graders see: "
             f"{'; '.join(f'{n} {shown}' for shown, n in summary['outputs_shown'].items()) or 'none'}.", "",
             "![score distribution](score_distribution.png)", "",
             "## Pass rate per check", "", "| check | pass rate |", "| --- | --- |"]
    lines += [f"| {markdown_text(grade_id)} | {rate:.0%} |" for grade_id, rate in pass_rates.items()]
    lines += ["", f"## Needs review ({len(review)})", ""]
    lines += [f"- **{markdown_text(r['student'])}**{named(r)} ({r['status']}): "
              f"{'; '.join(map(markdown_text, r['reasons']))}" for r in review] or ["None."]
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    return summary
