"""The DPO sweep's table and trade-off plot, from the `lsrec eval --json` files of scripts/dpo_sweep.sh.

Selection uses the validation split only: among the DPO models whose validation NDCG@10 is at least
97% of the SFT model's, the one with the highest validation Div@10 (none: the highest validation
NDCG@10). Test figures are reported for every model, the selected one marked.

Usage: python scripts/dpo_table.py --sft lsrec-medium-mt [--plot tradeoff.png] FOLDER
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ["NDCG@10", "HR@10", "Div@10", "PopPct@10", "Gini@10"]
NDCG_FLOOR = 0.97  # the goal: NDCG@10 falls at most 3% relative


def load(folder: Path, sft: str) -> tuple[dict, list[dict]]:
    """SFT results and one record per DPO model: {"model", "beta", "round", "valid", "test", "config"}."""
    by_model: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        if "all_users" not in result:
            continue
        entry = by_model.setdefault(result["model"], {"model": result["model"]})
        entry[result["split"]] = result["all_users"]
        dpo = result.get("training", {}).get("dpo")
        if dpo:
            entry |= {"beta": dpo["config"]["beta"], "round": dpo["rounds"], "config": dpo["config"]}
    base = by_model.pop(sft)
    models = [m for m in by_model.values() if "beta" in m and "valid" in m and "test" in m]
    models.sort(key=lambda m: (m["config"]["name"], m["round"]))
    return base, models


def select(base: dict, models: list[dict]) -> dict | None:
    floor = NDCG_FLOOR * base["valid"]["NDCG@10"]
    within = [m for m in models if m["valid"]["NDCG@10"] >= floor]
    if within:
        return max(within, key=lambda m: m["valid"]["Div@10"])
    return max(models, key=lambda m: m["valid"]["NDCG@10"], default=None)


def table(base: dict, models: list[dict], chosen: dict | None) -> str:
    header = ["model", "beta", "sft_weight", "negatives", "round", "valid NDCG@10", "valid Div@10", *(f"test {c}" for c in COLUMNS),
              "test NDCG@10 vs SFT", "test Div@10 vs SFT"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]

    def line(name, cfg, rnd, m):
        rel = [f"{m['test'][c] / base['test'][c] - 1:+.1%}" for c in ("NDCG@10", "Div@10")]
        setting = [f"{cfg['beta']:g}", f"{cfg['sft_weight']:g}", cfg["negatives"]] if cfg else ["-", "-", "-"]
        cells = [name, *setting, rnd, f"{m['valid']['NDCG@10']:.4f}", f"{m['valid']['Div@10']:.4f}",
                 *(f"{m['test'][c]:.4f}" for c in COLUMNS), *rel]
        lines.append("| " + " | ".join(cells) + " |")

    line(f"{base['model']} (SFT)", None, "0", base)
    for m in models:
        name = f"**{m['model']}** (selected)" if m is chosen else m["model"]
        line(name, m["config"], str(m["round"]), m)
    return "\n".join(lines)


def plot(base: dict, models: list[dict], chosen: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=False)
    for ax, split in zip(axes, ("valid", "test")):
        runs: dict[str, list[dict]] = {}
        for m in models:
            runs.setdefault(m["config"]["name"], []).append(m)
        for name, rounds in runs.items():
            xs = [base[split]["Div@10"]] + [m[split]["Div@10"] for m in rounds]
            ys = [base[split]["NDCG@10"]] + [m[split]["NDCG@10"] for m in rounds]
            cfg = rounds[0]["config"]
            extra = f", sft_weight {cfg['sft_weight']:g}" if cfg["sft_weight"] else ""
            extra += f", {cfg['negatives']} negatives" if cfg["negatives"] != "self-play" else ""
            ax.plot(xs, ys, "o-", label=f"beta {cfg['beta']:g}{extra}, rounds 1-{len(rounds)}")
            for m in rounds:
                ax.annotate(str(m["round"]), (m[split]["Div@10"], m[split]["NDCG@10"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
        ax.plot(base[split]["Div@10"], base[split]["NDCG@10"], "k*", markersize=14, label=f"SFT ({base['model']})")
        if chosen is not None:
            ax.plot(chosen[split]["Div@10"], chosen[split]["NDCG@10"], "s", mfc="none", mec="red", markersize=14,
                    label="selected on validation")
        ax.axhline(NDCG_FLOOR * base[split]["NDCG@10"], color="grey", ls=":", lw=1, label="SFT NDCG@10 - 3%")
        ax.axvline(1.2 * base[split]["Div@10"], color="grey", ls="--", lw=1, label="SFT Div@10 + 20%")
        ax.set_title(f"{split} split, all users")
        ax.set_xlabel("Div@10 (distinct items in all top-10 lists / catalogue)")
        ax.set_ylabel("NDCG@10")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle("LSRec-medium-mt on ML-100K: DPO self-play rounds, accuracy vs diversity")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", help="folder of lsrec eval JSON files (valid and test per model)")
    parser.add_argument("--sft", required=True, help="model name of the SFT checkpoint")
    parser.add_argument("--plot", help="write the trade-off PNG here")
    args = parser.parse_args()
    base, models = load(Path(args.folder), args.sft)
    chosen = select(base, models)
    print(table(base, models, chosen))
    if chosen:
        print(f"\nselected on validation: {chosen['model']}")
    if args.plot:
        plot(base, models, chosen, Path(args.plot))
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
