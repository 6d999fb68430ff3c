"""``mixkit list``: every registered method, whether it is available (and why not), its spatial dims,
whether it needs the model, and our defaults."""
from __future__ import annotations

import argparse
import json

from .. import registry

__all__ = ["register"]


def _cmd_list(args: argparse.Namespace) -> int:
    infos = [registry.describe(n) for n in registry.names()]
    if args.json:
        for d in infos:
            d["spatial_dims"] = list(d["spatial_dims"])
        print(json.dumps(infos, indent=2, default=str))
        return 0
    rows = [("method", "status", "dims", "model", "defaults", "class / why unavailable")]
    for d in infos:
        name = d["name"] + (f" ({', '.join(d['aliases'])})" if d["aliases"] else "")
        defaults = ", ".join(f"{k}={v}" for k, v in d["defaults"].items()) or "-"
        last = d["target"] if d["available"] else d["reason"].split(": ", 1)[-1]
        rows.append((name, "available" if d["available"] else "MISSING", ",".join(map(str, d["spatial_dims"])),
                     "yes" if d["needs_model"] else "no", defaults, last))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    n_ok = sum(d["available"] for d in infos)
    print(f"\n{n_ok}/{len(infos)} methods available. `mixkit show METHOD` draws one; docs/methods/<name>.md describes it.")
    return 0


def register(subparsers) -> None:
    """Add ``mixkit list`` to an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser("list", help="list the methods, available or not and why",
                              description="List every registered method: availability (and why not), supported "
                                          "spatial dims, whether it needs the model, and our defaults.")
    p.add_argument("--json", action="store_true", help="print the registry entries as JSON")
    p.set_defaults(func=_cmd_list)
