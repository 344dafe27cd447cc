"""Charts of MRR and its movements: text for the terminal, PNG for a deck.

``terminal_lines`` returns lines with rich markup (the command prints them); it draws with
block characters, so it needs no graphics. ``write_png`` draws with matplotlib's Agg backend
(no display needed): the MRR line on top, the movements as stacked bars below (new,
reactivation and expansion above zero; contraction and churn below), net new as a line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from pmfin.metrics.mrr import MonthMetrics
from pmfin.money import exponent, format_money, to_major

# movement, sign, colour (rich and matplotlib), character for the terminal
MOVEMENTS = (
    ("new", 1, "green", "#2e7d32", "█"),
    ("reactivation", 1, "cyan", "#00838f", "▓"),
    ("expansion", 1, "blue", "#1565c0", "▒"),
    ("contraction", -1, "yellow", "#ef8f00", "░"),
    ("churn", -1, "red", "#c62828", "█"),
)


def _scaled(value: int, scale: Decimal) -> int:
    """Whole characters for ``value`` at ``scale`` per character (at least 1 for a non-zero value)."""
    if value <= 0 or scale <= 0:
        return 0
    return max(1, int((Decimal(value) / scale).to_integral_value()))


def terminal_lines(series: Sequence[MonthMetrics], width: int = 48) -> list[str]:
    """An MRR bar per month, then a diverging bar of the movements per month (rich markup)."""
    if not series:
        return []
    currency = series[0].currency
    lines = [f"[bold]MRR ({currency.upper()})[/bold]"]
    top = max(m.mrr for m in series)
    scale = Decimal(top) / width if top > 0 else Decimal(0)
    for m in series:
        bar = "█" * _scaled(m.mrr, scale)
        lines.append(f"{m.month} │[magenta]{bar}[/magenta] {format_money(m.mrr, currency)}")
    half = width // 2
    ups = [m.new + m.reactivation + m.expansion for m in series]
    downs = [m.contraction + m.churn for m in series]
    biggest = max(ups + downs)
    mscale = Decimal(biggest) / half if biggest > 0 else Decimal(0)
    legend = "  ".join(f"[{rc}]{ch}[/{rc}] {name}" for name, _, rc, _, ch in MOVEMENTS)
    lines += ["", f"[bold]Movements[/bold]  {legend}"]
    for m in series:
        left = "".join(f"[{rc}]{ch * _scaled(getattr(m, name), mscale)}[/{rc}]"
                       for name, sign, rc, _, ch in reversed(MOVEMENTS) if sign < 0)
        right = "".join(f"[{rc}]{ch * _scaled(getattr(m, name), mscale)}[/{rc}]"
                        for name, sign, rc, _, ch in MOVEMENTS if sign > 0)
        left_len = sum(_scaled(getattr(m, n), mscale) for n, s, *_ in MOVEMENTS if s < 0)
        pad = " " * max(half - left_len, 0)
        net = format_money(m.net_new, currency)
        lines.append(f"{m.month} {pad}{left}│{right} net {'+' if m.net_new > 0 else ''}{net}")
    return lines


def write_png(series: Sequence[MonthMetrics], path: Path) -> Path:
    """A 16:9 PNG: MRR line (top) and stacked movement bars with net new (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    currency = series[0].currency
    labels = [str(m.month) for m in series]
    x = list(range(len(series)))
    major = lambda v: float(to_major(v, currency))  # noqa: E731 - plotting needs floats; money stays int upstream

    def money_fmt(v, _pos):  # axis labels: whole major units ("$1,234", "1,234 CHF")
        return re.sub(r"\.\d+", "", format_money(int(round(v * 10 ** exponent(currency))), currency))

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6.75), dpi=150, sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    ax1.plot(x, [major(m.mrr) for m in series], color="#6a1b9a", marker="o", linewidth=2.5, label="MRR")
    ax1.fill_between(x, [major(m.mrr) for m in series], color="#6a1b9a", alpha=0.08)
    ax1.set_title(f"MRR and MRR movements, {labels[0]} – {labels[-1]} ({currency.upper()})",
                  fontsize=15, loc="left", fontweight="bold")
    ax1.set_ylabel(f"MRR ({currency.upper()})", fontsize=11)
    ax1.yaxis.set_major_formatter(FuncFormatter(money_fmt))
    ax1.grid(axis="y", alpha=0.3)
    ax1.set_ylim(bottom=0)
    last = series[-1]
    ax1.annotate(format_money(last.mrr, currency), (x[-1], major(last.mrr)), textcoords="offset points",
                 xytext=(0, 10), ha="center", fontsize=11, fontweight="bold", color="#6a1b9a")

    pos = [0.0] * len(series)
    neg = [0.0] * len(series)
    for name, sign, _, colour, _ in MOVEMENTS:
        values = [major(getattr(m, name)) for m in series]
        if sign > 0:
            ax2.bar(x, values, bottom=pos, color=colour, label=name, width=0.7)
            pos = [p + v for p, v in zip(pos, values)]
        else:
            ax2.bar(x, [-v for v in values], bottom=neg, color=colour, label=name, width=0.7)
            neg = [n - v for n, v in zip(neg, values)]
    ax2.plot(x, [major(m.net_new) for m in series], color="black", marker="D", markersize=4,
             linewidth=1.5, label="net new")
    ax2.axhline(0, color="black", linewidth=0.8)
    ax2.set_ylabel("movements", fontsize=11)
    ax2.yaxis.set_major_formatter(FuncFormatter(money_fmt))
    ax2.grid(axis="y", alpha=0.3)
    ax2.legend(ncol=6, fontsize=9, loc="upper left", bbox_to_anchor=(0, -0.18), frameon=False)
    step = max(1, len(x) // 12)
    ax2.set_xticks(x[::step])
    ax2.set_xticklabels(labels[::step], rotation=0, fontsize=10)
    for ax in (ax1, ax2):
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
