"""The result as tables: plain text for the terminal, Markdown for a model card.

Both take the result's ``conditions`` rows (AP@0.5, AP@0.75 and AUC as
fractions in [0, 1], their ``drop`` from clean, ``seconds`` in wall-clock
seconds) as ``bench/robustness.py`` writes them.
"""

from __future__ import annotations

COLUMNS = ("condition", "files", "AP@0.5", "AP@0.75", "AUC", "dAP@0.5", "dAUC", "seconds")
"""Columns of :func:`text_table` (``seconds``: the condition's total wall-clock time)."""


def table_rows(rows: dict) -> list[list[str]]:
    """One row of strings per condition, in the order of :data:`COLUMNS`.

    Parameters
    ----------
    rows : dict
        The result's ``conditions``: name -> row (``files``, ``ap@0.5``, ``ap@0.75``,
        ``auc``, ``drop``, ``seconds``), or a row with ``skipped``.

    Returns
    -------
    list[list[str]]
        Metrics with four decimals (``n/a`` when not measured), seconds with one.
    """

    def num(v):
        return "n/a" if v is None else f"{v:.4f}"

    out = []
    for name, row in rows.items():
        if "skipped" in row:
            out.append([name, "0", "skipped", "", "", "", "", ""])
            continue
        drop = row.get("drop", {})
        out.append(
            [
                name,
                str(row["files"]),
                num(row.get("ap@0.5")),
                num(row.get("ap@0.75")),
                num(row.get("auc")),
                num(drop.get("ap@0.5")),
                num(drop.get("auc")),
                f"{row['seconds']['total']:.1f}",
            ]
        )
    return out


def text_table(rows: dict) -> str:
    """:func:`table_rows` under a header, in aligned columns (names left, numbers right)."""
    body = table_rows(rows)
    widths = [max(len(r[i]) for r in [list(COLUMNS), *body]) for i in range(len(COLUMNS))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [list(COLUMNS), *body])


def markdown_table(result: dict) -> str:
    """The whole result as a Markdown table with a caption and the notes on file counts.

    Parameters
    ----------
    result : dict
        The result JSON of ``bench/robustness.py`` (``model``, ``split``, ``meta``,
        ``files``, ``conditions``).

    Returns
    -------
    str
        Markdown, ending in a newline; Δ columns are clean minus the condition.
    """
    rows = result["conditions"]
    head = ["condition", "re-encoding", "files", "AP@0.5", "AP@0.75", "AUC", "ΔAP@0.5", "ΔAUC"]
    lines = [
        f"Robustness of `{result['model']['model_id']}` on split `{result['split']}` of `{result['meta']}` "
        f"({result['files']} files; Δ = clean − condition, positive is worse).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * 6) + "|",
    ]
    for r in table_rows(rows):
        desc = rows[r[0]]["description"] + (f" ({rows[r[0]]['skipped']})" if "skipped" in rows[r[0]] else "")
        lines.append("| " + " | ".join([f"`{r[0]}`", desc, *r[1:7]]) + " |")
    notes = [f"- `{n}`: {row['drop']['note']}" for n, row in rows.items() if row.get("drop", {}).get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"
