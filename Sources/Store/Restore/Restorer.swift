import Glibc

/// Restores (part of) a snapshot into a target directory, reproducing content and metadata:
/// file data (holes stay holes), hardlinks as hardlinks, symlinks, FIFOs, device nodes
/// (when root), permissions incl. setuid/sticky, numeric owner, xattrs/ACLs, atime/mtime.
///
/// Directories are created first, regular files are written by worker threads, and
/// directory metadata is applied last, deepest first, so writes do not disturb mtimes.
public final class Restorer {
    public struct Options: Sendable {
        public var target: RawPath
        /// Absolute snapshot paths to restore (with everything below them); empty = everything.
        public var includes: [RawPath]
        public var workers: Int
        public init(target: RawPath, includes: [RawPath] = [], workers: Int = 3) {
            self.target = target
            self.includes = includes
            self.workers = workers
        }
    }
    public struct Summary: Sendable {
        public var files = 0
        public var dirs = 0
        public var others = 0
        public var bytes: Int64 = 0
        public var errors: [String] = []
        /// Some data could not be read back (authentication failure, missing or truncated pack).
        public var damaged = false
        /// Bytes of large files whose blocks were reserved before their data was written.
        public var preallocatedBytes: Int64 = 0
    }

    private let repo: Repository
    private let options: Options
    private let includes: [[[UInt8]]]
    private var summary = Summary()
    private let lock = Mutex()
    private var hardlinkFirst: [Archiver.HardlinkKey: RawPath] = [:]
    private var dirsToFinish: [(RawPath, Node)] = []
    private let amRoot = geteuid() == 0
    /// Files from this size on are preallocated (smaller ones are allocated in one go anyway).
    static let preallocateMinimum: Int64 = 1 << 20

    private let cond = Condition()
    /// A regular file for a worker; `created`: it already exists (empty), made by the walk.
    private struct FileJob { let path: RawPath; let node: Node; let created: Bool }
    /// Files for one worker, in order: consecutive small files whose data shares a bundle blob
    /// go together, so the blob is decrypted and decompressed once, not once per file.
    private typealias Job = [FileJob]
    private var jobs: [Job] = []
    private var group: Job = []              // being assembled by the walk
    private var groupBlob: BlobID?           // the bundle blob the group's last file ends in
    private var jobHead = 0
    private var activeJobs = 0
    private var closed = false
    public let progress = BackupProgress()

    public init(repository: Repository, options: Options) {
        repo = repository
        self.options = options
        includes = options.includes.map { $0.normalizedAbsolute().components }
    }

    public func run(snapshot: SnapshotRecord) throws -> Summary {
        guard let root = snapshot.snapshot.treeID else { throw StoreError(.corrupt, "snapshot \(snapshot.shortID) has no tree") }
        let target = options.target.normalizedAbsolute()
        do { try Posix.makeDirectory(target, permissions: 0o700) } catch let e as PosixError {
            throw StoreError(.io, "cannot create target: \(e)")
        }
        var threads: [pthread_t] = []
        for _ in 0..<max(1, options.workers) { threads.append(PThread.start { [unowned self] in self.work() }) }
        var walkError: Error?
        do { try walk(tree: root, snapshotPath: [], target: target) } catch { walkError = error }
        submitGroup()
        cond.withLock { closed = true; cond.broadcast() }
        for t in threads { pthread_join(t, nil) }
        if let walkError { throw walkError }
        for (path, node) in dirsToFinish.reversed() { applyMetadata(path, node) }
        return summary
    }

    private func record(_ message: String) {
        lock.withLock { summary.errors.append(message) }
        progress.update { $0.errors += 1 }
    }

    /// Does the snapshot path `comps` fall under (or lead to) an include?
    private func selection(_ comps: [[UInt8]]) -> (wanted: Bool, descend: Bool) {
        if includes.isEmpty { return (true, true) }
        var descend = false
        for inc in includes {
            if comps.count >= inc.count && Array(comps.prefix(inc.count)) == inc { return (true, true) }
            if inc.count > comps.count && Array(inc.prefix(comps.count)) == comps { descend = true }
        }
        return (false, descend)
    }

    private func walk(tree id: BlobID, snapshotPath: [[UInt8]], target: RawPath) throws {
        let tree: Tree
        do { tree = try repo.loadTree(id) } catch let e as StoreError {
            if e.code == .corrupt || e.code == .missing { lock.withLock { summary.damaged = true } }
            record("\(RawPath(bytes: [0x2f] + snapshotPath.joined(separator: [0x2f]))): \(e.message)")
            return
        }
        for node in tree.nodes {
            let comps = snapshotPath + [node.name]
            let sel = selection(comps)
            let dest = target.appending(node.name)
            if !sel.wanted {
                if sel.descend, node.kind == .directory, let sub = node.subtree {
                    try ensureDirectory(dest)
                    try walk(tree: sub, snapshotPath: comps, target: dest)
                }
                continue
            }
            try restoreNode(node, at: dest, snapshotPath: comps)
        }
    }

    private func ensureDirectory(_ path: RawPath) throws {
        do { try Posix.makeDirectory(path, permissions: 0o700) } catch let e as PosixError {
            record(e.description)
        }
    }

    /// Removes whatever is at `path` unless it is a directory (restore overwrites files).
    private func clear(_ path: RawPath) {
        if let st = try? Posix.lstat(path), st.kind != .directory { try? Posix.remove(path) }
    }

    private func restoreNode(_ node: Node, at dest: RawPath, snapshotPath: [[UInt8]]) throws {
        do {
            if node.isHardlinked {
                let key = Archiver.HardlinkKey(device: node.device, inode: node.inode)
                if let first = lock.withLock({ hardlinkFirst[key] }) {
                    clear(dest)
                    try Posix.makeHardLink(dest, existing: first)
                    lock.withLock { summary.files += 1 }
                    return
                }
                lock.withLock { hardlinkFirst[key] = dest }
            }
            switch node.kind {
            case .directory:
                try Posix.makeDirectory(dest, permissions: 0o700)
                lock.withLock { summary.dirs += 1 }
                dirsToFinish.append((dest, node))
                if let sub = node.subtree { try walk(tree: sub, snapshotPath: snapshotPath, target: dest) }
            case .file:
                if node.isHardlinked {
                    // Create now so the other names can be linked before its data is written.
                    clear(dest)
                    try FileHandle.create(dest, permissions: 0o600).close()
                    enqueue(dest, node, created: true)
                } else {
                    enqueue(dest, node, created: false)   // the worker creates it
                }
            case .symlink:
                clear(dest)
                try Posix.makeSymlink(dest, target: node.linkTarget)
                applyMetadata(dest, node)
                lock.withLock { summary.others += 1 }
            case .fifo, .charDevice, .blockDevice, .socket:
                clear(dest)
                try Posix.makeNode(dest, kind: node.kind, permissions: node.permissions, rdev: node.rdev)
                applyMetadata(dest, node)
                lock.withLock { summary.others += 1 }
            }
        } catch let e as PosixError {
            record(e.description)
        }
    }

    // MARK: - File workers

    private func enqueue(_ path: RawPath, _ node: Node, created: Bool) {
        let first = node.content.first { $0.data != nil }
        if case .slice(let id, _, _)? = first, id == groupBlob {
            group.append(FileJob(path: path, node: node, created: created))
        } else {
            submitGroup()
            group = [FileJob(path: path, node: node, created: created)]
        }
        if case .slice(let id, _, _)? = node.content.last(where: { $0.data != nil }) { groupBlob = id } else { groupBlob = nil }
        if group.count >= 4096 || groupBlob == nil { submitGroup() }
    }

    private func submitGroup() {
        guard !group.isEmpty else { return }
        let g = group
        group = []
        groupBlob = nil
        cond.withLock {
            jobs.append(g)
            cond.broadcast()
        }
    }

    private func work() {
        var last: (id: BlobID, data: [UInt8])?   // the blob of the previous extent (a bundle, often)
        while true {
            let job: Job? = cond.withLock {
                while jobHead >= jobs.count && !closed { cond.wait() }
                guard jobHead < jobs.count else { return nil }
                let j = jobs[jobHead]
                jobs[jobHead] = []
                jobHead += 1
                return j
            }
            guard let job else { return }
            for file in job { restoreFile(file, last: &last) }
        }
    }

    private func restoreFile(_ job: FileJob, last: inout (id: BlobID, data: [UInt8])?) {
        let path = job.path, node = job.node
        do {
            // Data and metadata through one descriptor: no path lookups after the open.
            let fh = try job.created ? FileHandle.openForWriting(path) : createFile(path)
            defer { fh.close() }
            try writeFile(fh, node, last: &last)
            applyMetadata(fh, node)
            lock.withLock { summary.files += 1; summary.bytes += node.size }
            progress.update { $0.files += 1; $0.bytesDone += node.size }
        } catch let e as StoreError {
            if e.code == .corrupt || e.code == .missing { lock.withLock { summary.damaged = true } }
            record("\(path): \(e.message)")
        } catch let e as PosixError {
            record(e.description)
        } catch {
            record("\(error)")
        }
    }

    /// A new file at `path` (mode 0600 until its metadata is applied); whatever non-directory
    /// is in the way (restoring over an earlier restore) is removed first.
    private func createFile(_ path: RawPath) throws -> FileHandle {
        do {
            return try FileHandle.create(path, permissions: 0o600)
        } catch let e as PosixError where e.errno == EEXIST {
            clear(path)
            return try FileHandle.create(path, permissions: 0o600)
        }
    }

    private func writeFile(_ fh: FileHandle, _ node: Node, last: inout (id: BlobID, data: [UInt8])?) throws {
        // Blocks for a large file without holes are reserved before its data is written, as
        // restic does: the file gets few extents, and ext4 does not start writing back in the
        // middle of the restore when the target fills up (below twice the free space of the
        // data waiting for delayed allocation, it flushes: 1.6–2.0 s → 1.2–1.3 s, docs in
        // BENCHMARKS.md). A file with holes is left sparse; a failure only costs the speed-up.
        if node.size >= Restorer.preallocateMinimum, !node.content.contains(where: { $0.data == nil }),
           node.content.reduce(Int64(0), { $0 + $1.length }) == node.size, fh.preallocate(node.size) {
            lock.withLock { summary.preallocatedBytes += node.size }
        }
        var offset: Int64 = 0
        var written: Int64 = 0   // end of the last data written: the file's size so far
        for ext in node.content {
            guard let (id, from) = ext.data else {
                offset += ext.length   // a hole
                continue
            }
            let data: [UInt8]
            if let l = last, l.id == id { data = l.data } else {
                data = try repo.loadBlob(id, type: .data)
                last = (id, data)
            }
            let len = ext.length
            if case .chunk = ext, data.count != Int(len) {
                throw StoreError(.corrupt, "chunk \(id.shortHex) has \(data.count) bytes, expected \(len)")
            }
            guard Int64(data.count) >= from + len else {
                throw StoreError(.corrupt, "chunk \(id.shortHex) has \(data.count) bytes, the file needs \(from + len)")
            }
            do {
                try data.withUnsafeBytes { try fh.pwrite(UnsafeRawBufferPointer(rebasing: $0[Int(from)..<Int(from + len)]), at: offset) }
            } catch let e as PosixError {
                throw StoreError(.io, e.description)
            }
            offset += len
            written = offset
        }
        // A trailing hole needs the size set (the file was created empty).
        if offset != written {
            do { try fh.truncate(offset) } catch let e as PosixError { throw StoreError(.io, e.description) }
        }
    }

    /// The metadata of a regular file, through its descriptor (same order as below).
    private func applyMetadata(_ fh: FileHandle, _ node: Node) {
        do {
            if amRoot { try fh.setOwner(uid: node.uid, gid: node.gid) }
            try fh.setPermissions(node.permissions)
            for x in node.xattrs {
                do { try Posix.setExtendedAttribute(fh.path, name: x.name, value: x.value) } catch let e as PosixError {
                    if e.errno != EPERM || amRoot { record(e.description) }
                }
            }
            try fh.setTimes(atime: node.atime, mtime: node.mtime)
        } catch let e as PosixError {
            record(e.description)
        } catch {
            record("\(fh.path): \(error)")
        }
    }

    /// Owner, permissions, xattrs, then times (in that order: chown clears setuid bits and
    /// security.capability; writing data or xattrs changes mtime/ctime).
    private func applyMetadata(_ path: RawPath, _ node: Node) {
        do {
            if amRoot { try Posix.setOwner(path, uid: node.uid, gid: node.gid) }
            if node.kind != .symlink { try Posix.setPermissions(path, node.permissions) }
            for x in node.xattrs {
                do { try Posix.setExtendedAttribute(path, name: x.name, value: x.value) } catch let e as PosixError {
                    if e.errno != EPERM || amRoot { record(e.description) }
                }
            }
            try Posix.setTimes(path, atime: node.atime, mtime: node.mtime)
        } catch let e as PosixError {
            record(e.description)
        } catch {
            record("\(path): \(error)")
        }
    }
}
