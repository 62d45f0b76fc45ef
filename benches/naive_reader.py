#!/usr/bin/env python3
"""The naive reader of issue 13: the referrers of DIR:TAG by loading index.json and every listed
manifest blob and comparing their subjects. The scale benchmark's reference for `discover`."""
import json, os, sys

layout, tag = sys.argv[1], sys.argv[2]
with open(os.path.join(layout, "index.json")) as f:
    entries = json.load(f)["manifests"]
subject = next(e["digest"] for e in entries
               if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
referrers = []
for e in entries:
    alg, hex_ = e["digest"].split(":", 1)
    with open(os.path.join(layout, "blobs", alg, hex_), "rb") as f:
        m = json.loads(f.read())
    if m.get("subject", {}).get("digest") == subject:
        referrers.append({"digest": e["digest"], "artifactType": m.get("artifactType")})
json.dump({"subject": subject, "referrers": referrers}, sys.stdout)
