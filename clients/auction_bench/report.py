"""One experiment report: `reports/<timestamp>/report.md`, PNG plots, raw results as JSON, the machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from auction_bench.machine import machine_info

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Report:
    out_dir: Path
    lines: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> Report:
        out = root / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out.mkdir(parents=True, exist_ok=True)
        return cls(out)

    def heading(self, text: str, level: int = 2) -> None:
        self.lines += ["", "#" * level + " " + text, ""]

    def text(self, *paragraphs: str) -> None:
        for paragraph in paragraphs:
            self.lines += [paragraph, ""]

    def table(self, headers: list[str], rows: list[list[object]]) -> None:
        self.lines.append("| " + " | ".join(headers) + " |")
        self.lines.append("| " + " | ".join("---" for _ in headers) + " |")
        for row in rows:
            self.lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        self.lines.append("")

    def line_plot(
        self,
        name: str,
        title: str,
        xlabel: str,
        ylabel: str,
        series: dict[str, tuple[list[float], list[float]]],
        *,
        logx: bool = False,
    ) -> None:
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o", label=label)
        if logx:
            ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.out_dir / f"{name}.png", dpi=110)
        plt.close(fig)
        self.lines += [f"![{title}]({name}.png)", ""]

    def figure(self, name: str, title: str, fig: Figure) -> None:
        """Save a figure drawn elsewhere (several panels, shaded spans) as `<name>.png` and link it."""
        fig.savefig(self.out_dir / f"{name}.png", dpi=110)
        plt.close(fig)
        self.lines += [f"![{title}]({name}.png)", ""]

    def write(self, title: str) -> Path:
        machine = machine_info()
        head = [f"# {title}", "", f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} on this machine:", ""]
        head += [f"- {key}: {value}" for key, value in machine.items()]
        (self.out_dir / "machine.json").write_text(json.dumps(machine, indent=2) + "\n")
        (self.out_dir / "results.json").write_text(json.dumps(self.results, indent=2, default=str) + "\n")
        path = self.out_dir / "report.md"
        path.write_text("\n".join(head + self.lines) + "\n")
        return path


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    return str(value)
