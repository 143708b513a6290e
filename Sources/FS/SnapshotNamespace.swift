import Store

/// The names under which snapshots appear in a mount (issue: `coffer mount`):
///
///     /snapshots/<time>          every snapshot, by UTC start time ("2026-11-20T02:00:00Z"),
///                                "-1", "-2"… appended on collisions, plus "latest"
///     /hosts/<host>/<time>       the same per host, plus "latest"
///     /ids/<short id>            8-hex-digit id (longer when two ids share 8 digits)
///     /tags/<tag>/<time>         per tag
///
/// Names are stable: they depend only on the snapshots themselves, ordered by (time, id).
public struct SnapshotNamespace: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let snapshotID: String
    }

    public let all: [Entry]
    public let byHost: [String: [Entry]]
    public let byTag: [String: [Entry]]
    public let byID: [Entry]

    public init(_ records: [SnapshotRecord]) {
        let sorted = records.sorted { ($0.snapshot.timestamp, $0.id) < ($1.snapshot.timestamp, $1.id) }
        all = SnapshotNamespace.timeNames(sorted)
        var hosts: [String: [SnapshotRecord]] = [:]
        var tags: [String: [SnapshotRecord]] = [:]
        for r in sorted {
            hosts[SnapshotNamespace.safeName(r.snapshot.host), default: []].append(r)
            for t in Set(r.snapshot.tags) { tags[SnapshotNamespace.safeName(t), default: []].append(r) }
        }
        byHost = hosts.mapValues(SnapshotNamespace.timeNames)
        byTag = tags.mapValues(SnapshotNamespace.timeNames)
        var ids: [Entry] = []
        for r in sorted {
            var len = 8
            while len < r.id.count && sorted.contains(where: { $0.id != r.id && $0.id.hasPrefix(String(r.id.prefix(len))) }) {
                len += 2
            }
            ids.append(Entry(name: String(r.id.prefix(len)), snapshotID: r.id))
        }
        byID = ids
    }

    /// Time names with collision suffixes; input sorted oldest first.
    static func timeNames(_ sorted: [SnapshotRecord]) -> [Entry] {
        var used: [String: Int] = [:]
        return sorted.map { r in
            let base = r.snapshot.timestamp.rfc3339Seconds
            let n = used[base, default: 0]
            used[base] = n + 1
            return Entry(name: n == 0 ? base : "\(base)-\(n)", snapshotID: r.id)
        }
    }

    /// Host and tag names become single path components: "/" and NUL replaced, "." and ".." escaped.
    public static func safeName(_ s: String) -> String {
        var out = String(s.map { $0 == "/" || $0 == "\0" ? "_" : $0 })
        if out.isEmpty || out == "." || out == ".." { out = "_" + out }
        return out
    }
}
