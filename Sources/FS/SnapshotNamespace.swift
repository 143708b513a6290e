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
        // Shortest unique prefix (at least 8): with ids sorted, only neighbours can share a prefix.
        let ids = sorted.map(\.id).sorted()
        var length: [String: Int] = [:]
        for (i, id) in ids.enumerated() {
            var need = 8
            for j in [i - 1, i + 1] where j >= 0 && j < ids.count {
                let common = zip(id.utf8, ids[j].utf8).prefix { $0 == $1 }.count
                need = max(need, min(id.count, common + 1))
            }
            length[id] = need
        }
        let entries = sorted.map { Entry(name: String($0.id.prefix(length[$0.id] ?? 8)), snapshotID: $0.id) }
        byID = entries
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
