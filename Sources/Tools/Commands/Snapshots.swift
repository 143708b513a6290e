import ArgumentParser
import Store

struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List snapshots, oldest first.")

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "Only snapshots of this host.")
    var host: String?

    @Option(name: .customLong("tag"), help: "Only snapshots carrying this tag (repeatable: any of them).")
    var tags: [String] = []

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open()
            var list = try repo.snapshots(host: host)
            if !tags.isEmpty { list = list.filter { !Set($0.snapshot.tags).isDisjoint(with: tags) } }
            if output.json {
                Console.print(JSON.encode(list.map(SnapshotJSON.init), pretty: true))
                return Exit.ok
            }
            var rows = [["ID", "Time", "Host", "Tags", "Paths", "Size"]]
            for r in list {
                let s = r.snapshot
                let size = s.summary.map { formatBytes($0.bytesTotal) } ?? ""
                rows.append([r.shortID + (s.partial ? "*" : ""), s.timestamp.display, s.host, s.tags.joined(separator: ","),
                             s.paths.joined(separator: "\n"), size])
            }
            Console.print(Table.render(rows))
            var footer = "\(list.count) snapshot\(list.count == 1 ? "" : "s")"
            if list.contains(where: { $0.snapshot.partial }) { footer += " (* = partial: some files could not be read)" }
            Console.print(footer)
            return Exit.ok
        }
    }
}

/// The JSON shape of a snapshot in `snapshots --json`.
struct SnapshotJSON: Encodable {
    let id: String
    let short_id: String
    let time: String
    let host: String
    let username: String
    let tags: [String]
    let paths: [String]
    let tree: String
    let partial: Bool
    let summary: BackupSummary?
    /// The write-only key that wrote it (null: a read-capable key).
    let writer: String?
    let key_generation: UInt32

    init(_ r: SnapshotRecord) {
        let s = r.snapshot
        id = r.id; short_id = r.shortID; time = s.time; host = s.host; username = s.username
        tags = s.tags; paths = s.paths; tree = s.tree; partial = s.partial; summary = s.summary
        writer = r.writer; key_generation = r.generation
    }

    enum CodingKeys: String, CodingKey {
        case id, short_id, time, host, username, tags, paths, tree, partial, summary, writer, key_generation
    }
    /// Absent values are written as null, so every object has the same keys.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id); try c.encode(short_id, forKey: .short_id); try c.encode(time, forKey: .time)
        try c.encode(host, forKey: .host); try c.encode(username, forKey: .username); try c.encode(tags, forKey: .tags)
        try c.encode(paths, forKey: .paths); try c.encode(tree, forKey: .tree); try c.encode(partial, forKey: .partial)
        try c.encode(summary, forKey: .summary); try c.encode(writer, forKey: .writer)
        try c.encode(key_generation, forKey: .key_generation)
    }
}

/// Plain text tables with a rule under the header; multi-line cells stack.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        let split = rows.map { $0.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) } }
        var widths = [Int](repeating: 0, count: header.count)
        for r in split { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.map(\.count).max() ?? 0) } }
        var lines: [String] = []
        let rule = String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))
        for (n, r) in split.enumerated() {
            let height = r.map(\.count).max() ?? 1
            for h in 0..<height {
                var parts: [String] = []
                for (i, c) in r.enumerated() {
                    let t = h < c.count ? c[h] : ""
                    parts.append(i == r.count - 1 ? t : t + String(repeating: " ", count: widths[i] - t.count))
                }
                lines.append(parts.joined(separator: "  ").replacingTrailingSpaces())
            }
            if n == 0 { lines.append(rule) }
        }
        if rows.count > 1 { lines.append(rule) }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func replacingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
