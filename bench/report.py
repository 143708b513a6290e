#!/usr/bin/env python3
"""Turn bench/work/results.tsv (written by bench/run) into a Markdown report."""
import json
import sys

MiB = 1 << 20
TOOLS = ["coffer", "restic", "borg"]


def load(path):
    meta, res = {}, {t: {} for t in TOOLS}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) != 3:
                continue
            who, key, val = parts
            if who == "meta":
                meta[key] = val
            else:
                res.setdefault(who, {})[key] = val
    return meta, res


def num(d, key):
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def ratio_text(c, r, kind):
    """coffer value c vs restic value r."""
    if c is None or r is None or c <= 0 or r <= 0:
        return "-"
    if kind in ("time", "ms"):  # lower is better
        x = r / c
    elif kind == "rate":        # higher is better
        x = c / r
    elif kind == "size":
        return "%.2f× size" % (c / r)
    elif kind == "mem":
        return "%.2f× memory" % (c / r)
    else:
        return "-"
    y = x if x >= 1 else 1 / x
    num_s = ("%.2f" if y < 2 else "%.1f") % y
    return num_s + ("× faster" if x >= 1 else "× slower")


def main():
    meta, res = load(sys.argv[1])
    corpus_bytes = int(meta["corpus_bytes"])
    tree_bytes = int(meta["tree_bytes"])

    # derived metrics
    for t, d in res.items():
        b1 = num(d, "b1_s")
        if b1:
            d["b1_rate"] = corpus_bytes / MiB / b1
        rs = num(d, "r_s")
        if rs:
            d["r_rate"] = tree_bytes / MiB / rs
        rss = [num(d, k) for k in ("b1_rss", "b2_rss", "b3_rss")]
        rss = [x for x in rss if x is not None]
        if rss and "failed" not in d:
            d["max_backup_rss"] = max(rss)
        # mount phase
        ts = num(d, "m_tar_s")
        if ts:
            d["m_tar_rate"] = tree_bytes / MiB / ts
            d["m_tar_fps"] = int(meta["tree_files"]) / ts
            if d.get("r_rate"):
                d["m_tar_pct"] = 100.0 * d["m_tar_rate"] / d["r_rate"]
        ls_ = num(d, "m_large_s")
        if ls_ and "large_bytes" in meta:
            d["m_large_rate"] = int(meta["large_bytes"]) / MiB / ls_
        ss = num(d, "m_small_s")
        if ss and num(d, "m_small_n"):
            d["m_small_fps"] = num(d, "m_small_n") / ss
        if "m_find_n" in d and "find_expect" in meta:
            n, want = int(d["m_find_n"]), int(meta["find_expect"])
            d["m_find_check"] = ("ok (%d)" % n) if n == want else "**%d, expected %d**" % (n, want)

    rows = [
        ("First backup: wall time", "b1_s", "time"),
        ("First backup: throughput (MiB/s)", "b1_rate", "rate"),
        ("First backup, unlocked with a key file (a second, new repository; no KDF): wall time", "b1k_s", "time"),
        ("First backup: peak RSS", "b1_rss", "mem"),
        ("No-change backup: wall time", "b2_s", "time"),
        ("No-change backup, unlocked with a key file (no KDF): wall time", "b2k_s", "time"),
        ("No-change backup: peak RSS", "b2_rss", "mem"),
        ("~1% change backup: wall time", "b3_s", "time"),
        ("~1% change backup, unlocked with a key file (a second change of the same size; no KDF): wall time", "b3k_s", "time"),
        ("~1% change backup: peak RSS", "b3_rss", "mem"),
        ("Repository size after 3 backups" if meta.get("backup_repeat", "1") == "1" else
         "Repository size after %d backups (the no-change one %s times)" % (
             2 + int(meta.get("backup_repeat", "1")), meta.get("backup_repeat", "1")), "repo_bytes", "size"),
        ("Restore latest: wall time", "r_s", "time"),
        ("Restore latest: throughput (MiB/s)", "r_rate", "rate"),
        ("Restore latest, unlocked with a key file (no KDF): wall time", "rk_s", "time"),
        ("Restore latest: peak RSS", "r_rss", "mem"),
        ("Restore verified (diff -r)", "verify", "text"),
        ("Peak RSS across all backups", "max_backup_rss", "mem"),
    ]
    mount_on = meta.get("mount", "0") == "1"
    if mount_on:
        large_mib = int(meta.get("large_bytes", "0")) / MiB
        rows += [
            ("Mount: start + `find` over the snapshot: wall time", "m_find_s", "time"),
            ("Mount: start + `find`, unlocked with a key file (no KDF): wall time", "m_findk_s", "time"),
            ("Mount: entries listed by `find` (must equal %s)" % meta.get("find_expect", "?"),
             "m_find_check", "text"),
            ("Mount: whole-snapshot read (tar): MiB/s", "m_tar_rate", "rate"),
            ("Mount: whole-snapshot read (tar): files/s", "m_tar_fps", "rate"),
            ("Mount: whole-snapshot read as % of restore throughput", "m_tar_pct", "pct"),
            ("Mount: cold read of one %.0f MiB file: MiB/s" % large_mib, "m_large_rate", "rate"),
            ("Mount: %s random 4 KiB reads: reads/s" % meta.get("rand_n", "?"), "m_rand_rps", "rate"),
            ("Mount: random 4 KiB reads: mean latency", "m_rand_ms", "ms"),
            ("Mount: small files (< 64 KiB): files/s", "m_small_fps", "rate"),
            ("Mount: daemon peak RSS (max VmHWM over the mounts)", "m_rss", "mem"),
            ("Mount: data verified (big file + random reads)", "m_verify", "text"),
        ]
    phase_of = {"b1_s": "backup1", "b1_rate": "backup1", "b1_rss": "backup1",
                "b2_s": "backup2", "b2_rss": "backup2", "b3_s": "backup3",
                "b3_rss": "backup3", "repo_bytes": "list", "r_s": "restore",
                "r_rate": "restore", "r_rss": "restore", "verify": "restore"}

    def fmt(t, key, kind):
        d = res.get(t, {})
        st = d.get("status", "")
        if st.startswith("skipped") or t not in meta.get("tools", "").split():
            return "-"
        if key in d:
            v = d[key]
            if kind == "time":
                return "%.2f s" % float(v)
            if kind == "rate":
                return "%.1f" % float(v)
            if kind == "ms":
                return "%.2f ms" % float(v)
            if kind == "pct":
                return "%.0f%%" % float(v)
            if kind == "mem":
                return "%.0f MiB" % (float(v) / 1024)
            if kind == "size":
                return "%.1f MiB" % (float(v) / MiB)
            if isinstance(v, str) and "MISMATCH" in v and not v.startswith("**"):
                return "**%s**" % v
            return v
        if "failed" in d:
            # (a no-change round after the first is named backup2r2, backup2r3, ...)
            failed = d["failed"].split("r")[0] if d["failed"].startswith("backup2r") else d["failed"]
            return "**FAILED**" if phase_of.get(key) == failed else "-"
        return "-"

    out = []
    mut = {}
    try:
        mut = json.loads(meta.get("mutation", "{}"))
    except ValueError:
        pass
    out.append("### Benchmark run %s (corpus %s MiB)" % (meta["date"], meta["size_mib"]))
    out.append("")
    out.append("- Machine: %s CPUs (%s), %.1f GiB RAM, %s, work dir on %s" % (
        meta["nproc"], meta.get("cpu", "?"), int(meta["mem_kib"]) / (1 << 20),
        meta.get("kernel", "?"), meta.get("fs", "?")))
    out.append("- Corpus: %.1f MiB (%d bytes) in %s files, deterministic (bench/gencorpus.py); "
               "after the change step: %s files, %.1f MiB" % (
                   corpus_bytes / MiB, corpus_bytes, meta["corpus_files"],
                   meta["tree_files"], tree_bytes / MiB))
    if mut:
        out.append("- Change step: %d small files rewritten, %d × 64 KiB regions overwritten in a "
                   "large file, %d files added; %.1f MiB written (%.1f%% of the corpus)" % (
                       mut["rewritten_files"], mut["regions_64k"], mut["new_files"],
                       mut["changed_bytes"] / MiB, 100.0 * mut["changed_bytes"] / corpus_bytes))
    vers = []
    for t in TOOLS:
        d = res.get(t, {})
        st = d.get("status", "not selected")
        if st.startswith("skipped"):
            vers.append("%s: skipped (%s)" % (t, st.split(":", 1)[1]))
        elif st == "not selected" or t not in meta.get("tools", "").split():
            vers.append("%s: not selected" % t)
        else:
            vers.append("%s: %s" % (t, d.get("version", "unknown")))
            if st.startswith("failed"):
                vers[-1] += " — **FAILED in %s**" % st.split(":", 1)[1]
    out.append("- Versions: " + "; ".join(vers))
    out.append("- Default settings for every tool, fresh repositories and fresh tool caches; "
               "page cache NOT dropped, and right before each timed step the data it reads (the tree for backups, the "
               "tool's repository for restores and mounts) is read into it, so every tool reads warm data "
               "(this host's DAMON reclaim evicts idle page cache). Harness run took %s s." %
               meta.get("total_s", "?"))
    if "restore_on" in meta:
        rounds = meta.get("restore_repeat", "1")
        out.append("- Restores go into %s%s." % (meta["restore_on"], "" if rounds == "1" else
                   "; restore times are the median of %s rounds (tools interleaved, the order rotating from round to round so that each tool restores once in each place; the first round verified)" % rounds))
    b1rounds = meta.get("backup_repeat", "1")
    if b1rounds != "1":
        samples = "; ".join("%s %s s" % (t, res[t]["b1_samples"]) for t in TOOLS
                            if t in res and res[t].get("b1_samples"))
        out.append("- First backup: the median of %s rounds, each into a new repository (tools interleaved, "
                   "the order rotating); its peak RSS is the highest of the rounds. Samples: %s." % (b1rounds, samples))
        samples2 = "; ".join("%s %s s" % (t, res[t]["b2_samples"]) for t in TOOLS
                             if t in res and res[t].get("b2_samples"))
        if samples2:
            out.append("- No-change backup: the median of %s rounds, one after the other into the same repository "
                       "(tools interleaved, the order rotating); its peak RSS is the highest of the rounds. "
                       "Samples: %s." % (b1rounds, samples2))
    if "host_steal" in meta:
        steal, busy = float(meta["host_steal"]), float(meta["host_busy"])
        out.append("- Host during the run (/proc/stat): the CPUs were busy %.1f %% of the time, and %.1f %% of "
                   "that busy time was stolen by the hypervisor (%s %% iowait). Steal above a few percent "
                   "means a slowed host: compare such runs with care." % (
                       busy, 100 * steal / busy if busy > 0 else 0, meta["host_iowait"]))
    if mount_on:
        out.append("- Mount rows: latest snapshot mounted read-only (coffer mount --daemon, restic mount, "
                   "borg mount -f REPO::bench-3); every read test on a fresh mount (tool caches and the "
                   "per-mount FUSE page cache cold, repository files warm in the OS page cache); "
                   "big file: %s; small files: the %s files < 64 KiB; start + find, tar, big file, random reads and "
                   "small files: median of %s rounds (tools interleaved in each round)." % (
                       meta.get("large_rel", "?"), meta.get("small_expect", "?"), meta.get("mount_repeat", "1")))
    out.append("")
    out.append("| Metric | coffer | restic | borg | coffer vs restic |")
    out.append("|---|---:|---:|---:|---:|")
    for label, key, kind in rows:
        cells = [fmt(t, key, kind) for t in TOOLS]
        # key-file rows compare with restic's only variant (restic always derives its key from the password)
        base = {"b1k_s": "b1_s", "b2k_s": "b2_s", "b3k_s": "b3_s", "rk_s": "r_s", "m_findk_s": "m_find_s"}.get(key, key)
        ratio = ratio_text(num(res.get("coffer", {}), key), num(res.get("restic", {}), base), kind)
        out.append("| %s | %s | %s |" % (label, " | ".join(cells), ratio))
    if mount_on:
        notes = []
        for t in TOOLS:
            note = res.get(t, {}).get("m_note")
            if note and t in meta.get("tools", "").split():
                notes.append("- %s mount: %s" % (t, note))
        if notes:
            out.append("")
            out.append("Mount phase notes:")
            out.append("")
            out.extend(notes)
    print("\n".join(out))


if __name__ == "__main__":
    main()
