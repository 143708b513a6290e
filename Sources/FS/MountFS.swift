import Glibc
import Dispatch
import Store

/// The read-only filesystem a mount presents, as plain Swift over the Store API:
///
///     /snapshots/<time>/…   /hosts/<host>/<time>/…   /ids/<short id>/…   /tags/<tag>/<time>/…
///
/// plus a `latest` symlink in each time-ordered directory. Node ids (the kernel's handles)
/// are allocated on lookup and dropped on forget; `st_ino` is a stable hash (hardlinked
/// files share it). Directories load lazily, one tree blob at a time. Thread-safe: the
/// libfuse worker threads call in directly (never through Swift concurrency).
public final class MountFS: @unchecked Sendable {
    enum VirtualDir: Hashable { case root, snapshots, hosts, host(String), ids, tags, tag(String) }

    enum Kind {
        case virtual(VirtualDir)
        case symlink([UInt8])
        case snapshotRoot(snapshot: String, tree: BlobID)
        case node(snapshot: String, node: Node)
    }

    final class Entry {
        let kind: Kind
        let attr: FSAttr
        let parent: Entry?        // nil for the root
        let name: [UInt8]
        let parentTree: BlobID?   // the tree listing this node (snapshot content only)
        let parentID: UInt64      // the parent's node id (snapshot content only)
        var lookups: UInt64 = 0
        var file: OpenFile?       // regular files, once read (guarded by MountFS.lock)
        init(kind: Kind, attr: FSAttr, parent: Entry?, name: [UInt8], parentTree: BlobID? = nil, parentID: UInt64 = 0) {
            self.kind = kind; self.attr = attr; self.parent = parent; self.name = name
            self.parentTree = parentTree; self.parentID = parentID
        }

        /// The path below the mountpoint, for log messages. Built only when a message needs
        /// it: making it for every entry cost ~7 % of the daemon's CPU in a `find`.
        var path: String {
            var names: [[UInt8]] = []
            var e: Entry? = self
            while let cur = e, cur.parent != nil { names.append(cur.name); e = cur.parent }
            return names.isEmpty ? "/" : names.reversed().map { "/" + RawPath.escape($0) }.joined()
        }
    }

    struct ChildKey: Hashable { let parent: UInt64; let name: [UInt8] }

    public let repo: Repository
    let log: @Sendable (String) -> Void
    let lock = Mutex()
    var entries: [UInt64: Entry] = [:]
    var children: [ChildKey: UInt64] = [:]
    var nextID: UInt64 = 2
    /// Children of virtual directories, built once per snapshot-list refresh (lookups in
    /// /snapshots with thousands of snapshots must not rebuild and scan the list each time).
    var virtualCache: [VirtualDir: (list: [([UInt8], Kind)], byName: [[UInt8]: Kind])] = [:]
    var namespaceGeneration = 0
    let trees: LRUCache<BlobID, Tree>
    let mountTime = Timestamp.now()

    var namespace: SnapshotNamespace
    var snapshotsByID: [String: SnapshotRecord] = [:]
    var lastRefresh = 0.0
    let refreshLock = Mutex()
    let files = OpenFiles()
    var reported = Set<BlobID>()
    var prefetchedUpTo: [BlobID: Int] = [:]   // per directory tree: siblings queued so far
    let prefetcher: Prefetcher
    /// Directory trees read ahead: a listed directory's subdirectories are loaded on another
    /// core before anyone opens them (a walk such as `find` then finds them in `trees`).
    let treeReadAhead = DispatchQueue(label: "coffer.mount.tree-read-ahead", qos: .utility)
    var treesQueued = 0
    /// Sibling prefetch windows are worked out here, not in the read request that starts them:
    /// a window of 512 files (with the descent into subdirectories) took ~250 us, and tar
    /// waited for it at every first read of a directory.
    let siblingWindows = DispatchQueue(label: "coffer.mount.sibling-windows", qos: .userInitiated)
    var stopped = false
    static let treeReadAheadLimit = 1024
    /// Set by the FUSE session while mounted: prefetched files go into the kernel's page cache.
    public let pagePusher = PagePusher()

    /// Time entries of virtual content stay valid in the kernel (new snapshots show up after this).
    public static let virtualTimeout = 1.0
    /// Snapshot content never changes.
    public static let immutableTimeout = 86400.0

    public init(repository: Repository, log: @escaping @Sendable (String) -> Void) throws {
        repo = repository
        self.log = log
        trees = LRUCache(limit: 64 << 20)
        namespace = SnapshotNamespace([])
        prefetcher = Prefetcher(repository: repository, depth: 4)
        let rootAttr = FSAttr(ino: 1, mode: StatMode.dir | 0o555, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0,
                              atime: mountTime.timespec, mtime: mountTime.timespec, ctime: mountTime.timespec)
        let root = Entry(kind: .virtual(.root), attr: rootAttr, parent: nil, name: [])
        root.lookups = 1
        entries[1] = root
        try refresh(force: true)
        prefetcher.setPush { [unowned self] data, nodes in self.pushLoaded(data, to: nodes) }
    }

    /// Stops background threads (after unmount).
    public func shutdown() {
        lock.withLock { stopped = true }
        prefetcher.stop()
    }

    // MARK: - Snapshot list

    /// Re-reads the snapshot list (at most once a second unless forced).
    func refresh(force: Bool = false) throws {
        try refreshLock.withLock {
            let now = Monotonic.now()
            guard force || now - lastRefresh >= MountFS.virtualTimeout else { return }
            lastRefresh = now
            do { try repo.syncCatalog() } catch {
                if !force { log("cannot refresh the snapshot list: \(error)"); return }
                throw error
            }
            let list = try repo.snapshots()
            let ns = SnapshotNamespace(list)
            var byID: [String: SnapshotRecord] = [:]
            for r in list { byID[r.id] = r }
            lock.withLock {
                namespace = ns
                virtualCache.removeAll()
                namespaceGeneration += 1
                snapshotsByID = byID
            }
        }
    }

    // MARK: - Entries

    func entry(_ id: UInt64) throws(FSError) -> Entry {
        guard let e = lock.withLock({ entries[id] }) else { throw FSError(ESTALE) }
        return e
    }

    /// Looks up `name` in `parent`; counts a kernel reference on the returned node id.
    public func lookup(parent: UInt64, name: [UInt8]) throws(FSError) -> (id: UInt64, attr: FSAttr, timeout: Double) {
        let p = try entry(parent)
        let key = ChildKey(parent: parent, name: name)
        if let hit: (UInt64, Entry) = lock.withLock({
            guard let id = children[key], let e = entries[id] else { return nil }
            e.lookups += 1
            return (id, e)
        }) {
            return (hit.0, hit.1.attr, timeout(hit.1))
        }
        guard let made = try makeChild(of: p, parentID: parent, name: name) else { throw FSError(ENOENT) }
        return lock.withLock {
            if let id = children[key], let e = entries[id] {   // another thread won the race
                e.lookups += 1
                return (id, e.attr, timeout(e))
            }
            let id = nextID
            nextID += 1
            made.lookups = 1
            entries[id] = made
            children[key] = id
            return (id, made.attr, timeout(made))
        }
    }

    /// Drops `count` kernel references; the node id is freed at zero.
    public func forget(_ id: UInt64, count: UInt64) {
        guard id != 1 else { return }
        lock.withLock {
            guard let e = entries[id] else { return }
            e.lookups = e.lookups > count ? e.lookups - count : 0
            if e.lookups == 0 { entries[id] = nil }
        }
    }

    public func getattr(_ id: UInt64) throws(FSError) -> (FSAttr, Double) {
        let e = try entry(id)
        return (e.attr, timeout(e))
    }

    public func readlink(_ id: UInt64) throws(FSError) -> [UInt8] {
        switch try entry(id).kind {
        case .symlink(let t): return t
        case .node(_, let n) where n.kind == .symlink: return n.linkTarget
        default: throw FSError(EINVAL)
        }
    }

    /// True for snapshot content (whose listings the kernel may cache for good).
    public func isImmutable(_ id: UInt64) -> Bool {
        guard let e = lock.withLock({ entries[id] }) else { return false }
        switch e.kind {
        case .snapshotRoot, .node: return true
        case .virtual, .symlink: return false
        }
    }

    func timeout(_ e: Entry) -> Double {
        switch e.kind {
        case .virtual, .symlink: return MountFS.virtualTimeout
        case .snapshotRoot, .node: return MountFS.immutableTimeout
        }
    }

    // MARK: - Directories

    /// All entries of a directory, "." and ".." first.
    public func list(_ id: UInt64) throws(FSError) -> [FSDirEntry] {
        let e = try entry(id)
        var out = [FSDirEntry(name: [0x2e], ino: e.attr.ino, mode: e.attr.mode),
                   FSDirEntry(name: [0x2e, 0x2e], ino: 1, mode: StatMode.dir)]
        switch e.kind {
        case .virtual(let v):
            if v != .root { try? refresh() }
            for (name, kind) in virtualChildren(v) {
                let attr = makeAttr(kind, parentIno: e.attr.ino, name: name)
                out.append(FSDirEntry(name: name, ino: attr.ino, mode: attr.mode))
            }
        case .snapshotRoot(let snap, let tree):
            let t = try loadTree(tree, path: e.path)
            readAheadSubtrees(of: t)
            for n in t.nodes { out.append(dirEntry(n, snapshot: snap, parentIno: e.attr.ino)) }
        case .node(let snap, let node):
            guard node.kind == .directory else { throw FSError(ENOTDIR) }
            if let sub = node.subtree {
                let t = try loadTree(sub, path: e.path)
                readAheadSubtrees(of: t)
                for n in t.nodes { out.append(dirEntry(n, snapshot: snap, parentIno: e.attr.ino)) }
            }
        case .symlink:
            throw FSError(ENOTDIR)
        }
        return out
    }

    func dirEntry(_ n: Node, snapshot: String, parentIno: UInt64) -> FSDirEntry {
        FSDirEntry(name: n.name, ino: inode(for: n, snapshot: snapshot, parentIno: parentIno),
                   mode: StatMode.typeBits(n.kind) | n.permissions)
    }

    func loadTree(_ id: BlobID, path: @autoclosure () -> String) throws(FSError) -> Tree {
        if let t = trees.get(id) { return t }
        do {
            return try fetchTree(id)
        } catch {
            log("\(path()): cannot read directory: \(error)")
            throw FSError(EIO)
        }
    }

    /// Reads and decodes tree `id` from the repository and keeps it in `trees`.
    func fetchTree(_ id: BlobID) throws -> Tree {
        let t = try repo.loadTree(id)
        trees.put(id, t, cost: 256 + t.nodes.count * 160)
        return t
    }

    /// Loads the subdirectory trees of `t` in the background (at most `treeReadAheadLimit`
    /// queued; errors are left for the reader who opens that directory to report).
    func readAheadSubtrees(of t: Tree) {
        var ids: [BlobID] = []
        for n in t.nodes where n.kind == .directory {
            if let sub = n.subtree, !trees.contains(sub) { ids.append(sub) }
        }
        guard !ids.isEmpty else { return }
        let admitted: Bool = lock.withLock {
            guard !stopped, treesQueued + ids.count <= MountFS.treeReadAheadLimit else { return false }
            treesQueued += ids.count
            return true
        }
        guard admitted else { return }
        let queued = ids
        treeReadAhead.async { [self] in
            for id in queued {
                if !lock.withLock({ stopped }) && !trees.contains(id) { _ = try? fetchTree(id) }
                lock.withLock { treesQueued -= 1 }
            }
        }
    }

    /// The children of a virtual directory, by name.
    func virtualChildren(_ v: VirtualDir) -> [([UInt8], Kind)] {
        cachedVirtualChildren(v).list
    }

    func cachedVirtualChildren(_ v: VirtualDir) -> (list: [([UInt8], Kind)], byName: [[UInt8]: Kind]) {
        let (cached, generation) = lock.withLock { (virtualCache[v], namespaceGeneration) }
        if let cached { return cached }
        let list = buildVirtualChildren(v)
        var byName: [[UInt8]: Kind] = [:]
        for (name, kind) in list { byName[name] = kind }
        // Built from a list that a refresh has since replaced: use it once, do not keep it.
        lock.withLock { if namespaceGeneration == generation { virtualCache[v] = (list, byName) } }
        return (list, byName)
    }

    func buildVirtualChildren(_ v: VirtualDir) -> [([UInt8], Kind)] {
        let ns = lock.withLock { namespace }
        func timeDir(_ list: [SnapshotNamespace.Entry]) -> [([UInt8], Kind)] {
            var out: [([UInt8], Kind)] = []
            for e in list {
                if let k = snapshotKind(e.snapshotID) { out.append((Array(e.name.utf8), k)) }
            }
            if let last = list.last { out.append((Array("latest".utf8), .symlink(Array(last.name.utf8)))) }
            return out
        }
        switch v {
        case .root:
            return [("snapshots", VirtualDir.snapshots), ("hosts", .hosts), ("ids", .ids), ("tags", .tags)]
                .map { (Array($0.0.utf8), Kind.virtual($0.1)) }
        case .snapshots: return timeDir(ns.all)
        case .hosts: return ns.byHost.keys.sorted().map { (Array($0.utf8), .virtual(.host($0))) }
        case .host(let h): return timeDir(ns.byHost[h] ?? [])
        case .ids: return ns.byID.compactMap { e in snapshotKind(e.snapshotID).map { (Array(e.name.utf8), $0) } }
        case .tags: return ns.byTag.keys.sorted().map { (Array($0.utf8), .virtual(.tag($0))) }
        case .tag(let t): return timeDir(ns.byTag[t] ?? [])
        }
    }

    func snapshotKind(_ id: String) -> Kind? {
        guard let r = lock.withLock({ snapshotsByID[id] }), let tree = r.snapshot.treeID else { return nil }
        return .snapshotRoot(snapshot: id, tree: tree)
    }

    func makeChild(of p: Entry, parentID: UInt64, name: [UInt8]) throws(FSError) -> Entry? {
        switch p.kind {
        case .virtual(let v):
            if v != .root { try? refresh() }
            guard let kind = cachedVirtualChildren(v).byName[name] else { return nil }
            return Entry(kind: kind, attr: makeAttr(kind, parentIno: p.attr.ino, name: name), parent: p, name: name)
        case .snapshotRoot(let snap, let tree):
            guard let n = try loadTree(tree, path: p.path).node(named: name) else { return nil }
            let k = Kind.node(snapshot: snap, node: n)
            return Entry(kind: k, attr: makeAttr(k, parentIno: p.attr.ino, name: name), parent: p, name: name, parentTree: tree, parentID: parentID)
        case .node(let snap, let node):
            guard node.kind == .directory else { throw FSError(ENOTDIR) }
            guard let sub = node.subtree, let n = try loadTree(sub, path: p.path).node(named: name) else { return nil }
            let k = Kind.node(snapshot: snap, node: n)
            return Entry(kind: k, attr: makeAttr(k, parentIno: p.attr.ino, name: name), parent: p, name: name, parentTree: sub, parentID: parentID)
        case .symlink:
            throw FSError(ENOTDIR)
        }
    }

    // MARK: - Attributes

    func inode(for n: Node, snapshot: String, parentIno: UInt64) -> UInt64 {
        var h = FNV1a()
        if n.isHardlinked {
            // Every name of one inode in one snapshot gets the same number.
            h.add(snapshot.utf8)
            h.add(n.device)
            h.add(n.inode)
        } else {
            h.add(parentIno)
            h.add(n.name)
        }
        return h.inode
    }

    func makeAttr(_ kind: Kind, parentIno: UInt64, name: [UInt8]) -> FSAttr {
        var h = FNV1a()
        h.add(parentIno)
        h.add(name)
        let t = mountTime.timespec
        switch kind {
        case .virtual:
            return FSAttr(ino: h.inode, mode: StatMode.dir | 0o555, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0,
                          atime: t, mtime: t, ctime: t)
        case .symlink(let target):
            return FSAttr(ino: h.inode, mode: StatMode.link | 0o777, nlink: 1, uid: 0, gid: 0, rdev: 0,
                          size: Int64(target.count), blocks: 0, atime: t, mtime: t, ctime: t)
        case .snapshotRoot(let id, _):
            let st = lock.withLock { snapshotsByID[id] }?.snapshot.timestamp.timespec ?? t
            return FSAttr(ino: h.inode, mode: StatMode.dir | 0o755, nlink: 1, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0,
                          atime: st, mtime: st, ctime: st)
        case .node(let snap, let n):
            var data: Int64 = 0
            for e in n.content where e.data != nil { data += e.length }
            return FSAttr(ino: inode(for: n, snapshot: snap, parentIno: parentIno),
                          mode: StatMode.typeBits(n.kind) | n.permissions,
                          nlink: n.kind == .directory ? 1 : max(1, n.nlink), uid: n.uid, gid: n.gid, rdev: n.rdev,
                          size: n.kind == .directory ? 0 : n.size, blocks: (data + 511) / 512,
                          atime: n.atime, mtime: n.mtime, ctime: n.ctime)
        }
    }

    // MARK: - Extended attributes

    public func xattrs(_ id: UInt64) throws(FSError) -> [Node.Xattr] {
        if case .node(_, let n) = try entry(id).kind { return n.xattrs }
        return []
    }

    // MARK: - statfs

    public func statfs() -> FSStatfs {
        let packs = (try? repo.catalog.packs()) ?? []
        let bytes = packs.reduce(UInt64(0)) { $0 + UInt64($1.end) }
        return FSStatfs(blockSize: 4096, blocks: (bytes + 4095) / 4096, files: UInt64(repo.catalog.blobCount), nameMax: 255)
    }
}

extension Timestamp {
    var timespec: Timespec { Timespec(seconds: seconds, nanoseconds: nanoseconds) }
}
