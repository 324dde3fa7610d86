"""One picture per benchmark table: horizontal bars of what was measured,
one panel per table, each bar labelled with its value. Written beside the
tables the benchmarks print, for the README (docs/bench/)."""
import os

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402


def bars(path, title, panels):
    """panels: [(panel title, x label, [(label, value), ...])]; the first
    bar of each panel (tessera, or the reference row) is drawn darker."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rows = sum(len(p[2]) for p in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 0.9 + 0.42 * rows + 0.6 * len(panels)), squeeze=False,
                             gridspec_kw={"height_ratios": [max(1, len(p[2])) for p in panels]})
    for ax, (name, xlabel, items) in zip(axes[:, 0], panels):
        labels, values = [i[0] for i in items][::-1], [i[1] for i in items][::-1]
        colors = ["#9bb7d4"] * (len(items) - 1) + ["#2f5d8a"]
        ax.barh(labels, values, color=colors)
        top = max(values) if values else 1
        for y, v in enumerate(values):
            ax.text(v + top * 0.01, y, f"{v:,.2f}" if v < 100 else f"{v:,.0f}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.18)
        ax.set_title(name, fontsize=10, loc="left")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"\n(plot: {path})")
