import ArgumentParser
import Foundation
import Store

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List files in a snapshot.",
        discussion: "Lists PATH (default /) and everything below it. --json prints one JSON object per line.")

    @OptionGroup var repository: RepositoryOptions
    @OptionGroup var output: OutputOptions

    @Option(help: "With 'latest': the newest snapshot of this host.")
    var host: String?

    @Flag(name: .shortAndLong, help: "Long listing: mode, owner, size, mtime.")
    var long = false

    @Argument(help: "Snapshot id prefix or 'latest'.")
    var snapshot: String

    @Argument(help: "Path inside the snapshot.")
    var path: String = "/"

    func run() throws {
        try runReportingErrors {
            let repo = try repository.open()
            let record = try repo.findSnapshot(snapshot, host: host)
            guard let rootID = record.snapshot.treeID else { throw StoreError(.corrupt, "snapshot \(record.shortID) has no tree") }
            let comps = RawPath(path).normalizedAbsolute().components
            var tree = try repo.loadTree(rootID)
            var start: Node?
            var prefix = RawPath("/")
            for (i, c) in comps.enumerated() {
                guard let n = tree.node(named: c) else {
                    throw StoreError(.invalidArgument, "\(path): not in snapshot \(record.shortID)")
                }
                prefix = prefix.appending(c)
                if i == comps.count - 1 { start = n; break }
                guard n.kind == .directory, let sub = n.subtree else {
                    throw StoreError(.invalidArgument, "\(path): not in snapshot \(record.shortID)")
                }
                tree = try repo.loadTree(sub)
            }
            if let s = start {
                emit(s, path: prefix)
                if s.kind == .directory, let sub = s.subtree { try walk(repo, sub, prefix) }
            } else {
                try walk(repo, rootID, prefix)
            }
            return Exit.ok
        }
    }

    private func walk(_ repo: Repository, _ id: BlobID, _ dir: RawPath) throws {
        for n in try repo.loadTree(id).nodes {
            let p = dir.appending(n.name)
            emit(n, path: p)
            if n.kind == .directory, let sub = n.subtree { try walk(repo, sub, p) }
        }
    }

    private func emit(_ n: Node, path: RawPath) {
        if output.json {
            Console.print(JSON.encode(NodeJSON(n, path: path)))
        } else if long {
            let owner = (n.user ?? String(n.uid)) + "/" + (n.group ?? String(n.gid))
            var line = "\(modeString(n)) \(owner.padding(toLength: max(owner.count, 14), withPad: " ", startingAt: 0)) "
            let size = String(n.size)
            line += String(repeating: " ", count: max(0, 12 - size.count)) + size + " "
            line += Timestamp(seconds: n.mtime.seconds, nanoseconds: n.mtime.nanoseconds).display + " " + path.description
            if n.kind == .symlink { line += " -> " + RawPath.escape(n.linkTarget) }
            Console.print(line)
        } else {
            Console.print(path.description)
        }
    }
}

func modeString(_ n: Node) -> String {
    let type: Character
    switch n.kind {
    case .file: type = "-"
    case .directory: type = "d"
    case .symlink: type = "l"
    case .charDevice: type = "c"
    case .blockDevice: type = "b"
    case .fifo: type = "p"
    case .socket: type = "s"
    }
    let p = n.permissions
    var s = [type]
    let rwx: [Character] = ["r", "w", "x"]
    for shift in stride(from: 6, through: 0, by: -3) {
        for (i, ch) in rwx.enumerated() {
            s.append(p >> UInt32(shift + 2 - i) & 1 == 1 ? ch : "-")
        }
    }
    if p & 0o4000 != 0 { s[3] = s[3] == "x" ? "s" : "S" }
    if p & 0o2000 != 0 { s[6] = s[6] == "x" ? "s" : "S" }
    if p & 0o1000 != 0 { s[9] = s[9] == "x" ? "t" : "T" }
    return String(s)
}

/// The JSON shape of one entry in `ls --json`.
struct NodeJSON: Encodable {
    let path: String
    let name: String
    let type: String
    let mode: String
    let permissions: UInt32
    let uid: UInt32
    let gid: UInt32
    let user: String?
    let group: String?
    let size: Int64
    let mtime: String
    let atime: String
    let ctime: String
    let inode: UInt64
    let links: UInt64
    let link_target: String?
    let xattrs: [String]?

    init(_ n: Node, path p: RawPath) {
        path = p.description
        name = RawPath.escape(n.name)
        switch n.kind {
        case .file: type = "file"
        case .directory: type = "dir"
        case .symlink: type = "symlink"
        case .charDevice: type = "chardev"
        case .blockDevice: type = "blockdev"
        case .fifo: type = "fifo"
        case .socket: type = "socket"
        }
        mode = modeString(n)
        permissions = n.permissions
        uid = n.uid; gid = n.gid; user = n.user; group = n.group; size = n.size
        func t(_ ts: Store.Timespec) -> String { Timestamp(seconds: ts.seconds, nanoseconds: ts.nanoseconds).rfc3339 }
        mtime = t(n.mtime); atime = t(n.atime); ctime = t(n.ctime)
        inode = n.inode; links = n.nlink
        link_target = n.kind == .symlink ? RawPath.escape(n.linkTarget) : nil
        xattrs = n.xattrs.isEmpty ? nil : n.xattrs.map { RawPath.escape($0.name) }
    }
}
