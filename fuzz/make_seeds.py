#!/usr/bin/env python3
"""Seeds the `connection` and `frame` fuzz corpora with Kong's real traffic:
every connection of every recording in crates/kong-pdk/tests/vectors/recordings
(or the folder given as the first argument), Kong's frames
(length-prefixed, as on the wire) concatenated."""
import json, pathlib, struct, sys

here = pathlib.Path(__file__).resolve().parent
vectors = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "../crates/kong-pdk/tests/vectors/recordings"
for target in ("connection", "frame"):
    out = here / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for f in sorted(vectors.glob("*.json")):
        rec = json.loads(f.read_text())
        for i, conn in enumerate(rec["connections"]):
            wire = b""
            for e in conn:
                if e.get("dir") == "kong_to_plugin" and "hex" in e:
                    payload = bytes.fromhex(e["hex"])
                    wire += struct.pack("<I", len(payload)) + payload
            if wire:
                (out / f"{f.stem}-{i}").write_bytes(wire)
                n += 1
    print(f"{n} seeds in {out}")
