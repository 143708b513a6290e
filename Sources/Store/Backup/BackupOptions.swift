/// What to back up and how to label it.
public struct BackupOptions: Sendable {
    public var paths: [RawPath]
    public var host: String
    public var tags: [String]
    /// fnmatch(3) patterns matched against the full path and the base name; matches are skipped.
    public var excludes: [String]
    /// Do not descend into directories on other filesystems than their top-level path.
    public var oneFileSystem: Bool
    public var workers: Int
    public var program: String
    /// Files at least this large are read on a second thread (the file lane) while the walk
    /// goes on through the tree; nil reads every file on the walk's thread.
    public var laneMinimumSize: Int64?

    public init(paths: [RawPath], host: String, tags: [String] = [], excludes: [String] = [],
                oneFileSystem: Bool = false, workers: Int = 2, program: String = "coffer",
                laneMinimumSize: Int64? = 1 << 20) {
        self.paths = paths
        self.host = host
        self.tags = tags
        self.excludes = excludes
        self.oneFileSystem = oneFileSystem
        self.workers = workers
        self.program = program
        self.laneMinimumSize = laneMinimumSize
    }
}

/// The result of a backup.
public struct BackupResult: Sendable {
    public let snapshotID: String
    public let snapshot: Snapshot
    public var summary: BackupSummary { snapshot.summary ?? BackupSummary() }
}

/// The selected paths as a trie over their components: a selected node takes its whole
/// subtree; an unselected node is an intermediate directory holding only selected descendants.
final class PathTrie {
    var children: [[UInt8]: PathTrie] = [:]
    var selected = false

    init(paths: [RawPath]) {
        for p in paths { insert(p.components) }
    }
    private init() {}

    private func insert(_ comps: [[UInt8]]) {
        var node = self
        for c in comps {
            if node.selected { return }
            if let n = node.children[c] { node = n } else {
                let n = PathTrie()
                node.children[c] = n
                node = n
            }
        }
        node.selected = true
        node.children.removeAll()
    }
}
