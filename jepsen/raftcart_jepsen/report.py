"""The run's outputs: a plain summary, the JSON result, and a picture of
latency over time with the fault windows shaded."""

import json


def summary(label, result):
    lines = [f"== {label}: {result.get('ops', 0)} operations"]
    for f, c in result.get("counts", {}).items():
        lines.append(f"   {f:<11} " + "  ".join(f"{k} {v}" for k, v in sorted(c.items())))
    for w in result.get("windows", []):
        share = "-" if w["ok_fraction"] is None else f"{100 * w['ok_fraction']:.0f}%"
        lines.append(f"   fault {w['start']:6.1f}-{w['end']:6.1f}s {w['nemesis']:<17} "
                     f"{share:>4} of {w['ops']} ops ok   ({w['what']})")
    o = result.get("longest_write_outage")
    if o:
        lines.append(f"   longest write outage: {o['seconds']:.2f} s (from {o['from']:.1f} s)")
    for what, keys in result.get("not_checked", {}).items():
        if keys:
            lines.append(f"   not checked ({what}, search too large): {', '.join(keys)}")
    if "checker_seconds" in result:
        lines.append(f"   checked in {result['checker_seconds']} s")
    for e in result["errors"]:
        lines.append(f"   ERROR {e}")
    lines.append(f"   {'valid' if result['valid'] else 'INVALID'}")
    return "\n".join(lines)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1, default=str)


def plot(path, label, history, windows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    for w in windows:
        ax.axvspan(w["start"], w["end"], color="tab:red", alpha=0.12)
        ax.text(w["start"], 1.02, w["nemesis"], transform=ax.get_xaxis_transform(),
                fontsize=7, rotation=20)
    for kind, color in (("ok", "tab:blue"), ("fail", "tab:orange"), ("info", "tab:red")):
        ops = [op for op in history if op["type"] == kind]
        ax.scatter([op["invoke"] for op in ops], [max(op["latency"], 1e-4) * 1000 for op in ops],
                   s=3, color=color, label=f"{kind} ({len(ops)})")
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"raftcart under {label}: latency per operation, faults shaded", pad=24)
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
