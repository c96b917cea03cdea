"""Plots of a simulated day (matplotlib, Agg backend, imported only when asked for)."""

from __future__ import annotations

from typing import Sequence

from ..errors import UsageError
from .metrics import Metrics


def plot_day(results: Sequence[Metrics], path: str) -> str:
    """Active hosts, power and overloaded hosts over the day, one line per result."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the [plot] extra
        raise UsageError(f"--plot needs matplotlib (pip install 'tune-autonomic[plot]'): {exc}") from None
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for m in results:
        s = m.series
        hours = s["time"] / 3600.0
        axes[0].plot(hours, s["active_hosts"], label=m.policy, linewidth=1)
        axes[1].plot(hours, s["power_w"] / 1000.0, label=m.policy, linewidth=1)
        axes[2].plot(hours, s["overloaded_hosts"], label=m.policy, linewidth=1)
    axes[0].set_ylabel("active hosts")
    axes[1].set_ylabel("power (kW)")
    axes[2].set_ylabel("hosts short of CPU")
    axes[2].set_xlabel("hour of the day")
    axes[0].legend(loc="upper right", fontsize="small")
    day = results[0].day if results else ""
    fig.suptitle(f"tune simulate: {day.rsplit('/', 1)[-1]}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
