#!/usr/bin/env python3
# Checks our proto2 subset (lib/proto/*.proto) against Baileys' WAProto schema: every message,
# enum, field and enum value we declare must exist in WAProto (Baileys 7 first, else Baileys 6)
# with the same number, type, label (repeated or not) and packing.
# Usage: check_schema.py <lib/proto dir> <WAProto.proto (7)> [<WAProto.proto (6)>]
# Types in COMPLETE (and their nested types) must also declare every field WAProto has.
# Exit status 0 when everything matches, 1 with one line per mismatch otherwise.
# SPDX-License-Identifier: GPL-3.0-or-later
import re
import sys


def parse(path):
    """Map of full dotted name -> (kind, {field: (repeated, type, number, packed)})."""
    txt = open(path, encoding="utf-8").read()
    txt = re.sub(r"//[^\n]*", "", txt)
    txt = re.sub(r"map<\s*(\w+)\s*,\s*(\w+)\s*>", r"map_\1_\2", txt)
    toks = re.findall(r'"[^"]*"|[A-Za-z_][\w.]*|-?\d+|[{};=\[\]]', txt)
    out, stack, i = {}, [], 0
    while i < len(toks):
        t = toks[i]
        if t in ("message", "enum") and i + 2 < len(toks) and toks[i + 2] == "{":
            stack.append(toks[i + 1])
            out[".".join(s for s in stack if s != "#")] = (t, {})
            i += 3
            continue
        if t == "oneof":
            stack.append("#")
            i += 3
            continue
        if t == "}":
            if stack:
                stack.pop()
            i += 1
            continue
        j = i
        while toks[j] != ";":
            j += 1
        parts, i = toks[i:j], j + 1
        if not stack or "=" not in parts or parts[0] in ("syntax", "option", "package", "import"):
            continue
        kind, fields = out[".".join(s for s in stack if s != "#")]
        k = parts.index("=")
        head, num, opts = parts[:k], int(parts[k + 1]), parts[k + 2:]
        if kind == "enum":
            fields[head[0]] = (False, "enumval", num, False)
            continue
        if head[0] in ("optional", "required", "repeated"):
            label, typ, name = head
        else:
            label, typ, name = ("",) + tuple(head)
        packed = "packed" in opts and "true" in opts
        fields[name] = (label == "repeated", typ.split(".")[-1], num, packed)
    return out


COMPLETE = ("HandshakeMessage", "CertChain", "ClientPayload", "DeviceProps", "ADV",
            "MessageKey", "DeviceListMetadata", "DisappearingMode", "GroupMention",
            "Message.AppStateSyncKey", "Message.HistorySyncNotification",
            "Message.SenderKeyDistributionMessage", "Message.ReactionMessage",
            "Message.DeviceSentMessage", "Message.FutureProofMessage",
            "Message.ContactMessage", "Message.LocationMessage", "Message.DocumentMessage",
            "Message.AudioMessage", "Message.StickerMessage", "Message.ContactsArrayMessage",
            "Message.ProtocolMessage.Type")


def main():
    import glob
    import os

    ours = {}
    for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.proto"))):
        for k, v in parse(p).items():
            ours[k] = (v, os.path.basename(p))
    refs = [parse(p) for p in sys.argv[2:]]
    bad = 0
    for name, ((kind, fields), fname) in sorted(ours.items()):
        ref = next((r[name] for r in refs if name in r), None)
        if ref is None or ref[0] != kind:
            print(f"{fname}: {kind} {name} not in WAProto")
            bad += 1
            continue
        for f, v in fields.items():
            want = next((r[name][1][f] for r in refs if name in r and f in r[name][1]), None)
            if want != v:
                print(f"{fname}: {name}.{f} = {v}, WAProto has {want}")
                bad += 1
        if name.startswith(COMPLETE):
            for f in sorted({f for r in refs for f in r.get(name, (None, {}))[1]}):
                if f not in fields:
                    print(f"{fname}: {name}.{f} missing (type declared complete)")
                    bad += 1
    print(f"{len(ours)} types checked, {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
