import Glibc
import Dispatch

/// Runs one backup: walks the selected paths, stores new content, writes index and snapshot.
///
/// Ordering guarantees crash safety: packs are published (fsync + link) before the index
/// file naming them, and the index before the snapshot. A crash leaves at most unreferenced
/// packs and staged temporary files, never a snapshot pointing at missing data.
public final class Archiver {
    let repo: Repository
    let options: BackupOptions
    let progress: BackupProgress
    let sealer: Sealer
    let packer: Packer
    let uploader: BlobUploader
    let newBlobs: NewBlobs
    /// Reads the files the walk reads itself.
    let saver: ContentSaver
    /// Reads large files while the walk goes on, during `run()` (nil: `options.laneMinimumSize`
    /// is nil).
    var lane: FileLane?
    let laneSaver: ContentSaver?
    /// Called on the lane's thread before it opens a file (tests use it to change the source).
    var laneWillRead: ((RawPath) -> Void)?

    var pendingFileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)] = []
    var hardlinks: [HardlinkKey: (content: [Node.Extent], category: FileCategory)] = [:]
    enum FileCategory { case new, changed, unchanged }
    var summary = BackupSummary()
    var rootDevice: UInt64 = 0
    /// Reads directories ahead of the walk (nil once it fell out of step: the walk reads itself).
    var prefetcher: SourcePrefetcher?

    struct HardlinkKey: Hashable { let device: UInt64; let inode: UInt64 }

    /// A directory whose tree can be written only once every entry is complete: files still
    /// being read on the lane, subdirectories waiting for theirs. `nodes` are its entries in
    /// order (nil: left out); the tree goes into its parent's node at `slot` (the root has no
    /// parent: `rootTree`).
    final class PendingDirectory {
        var nodes: [Node?] = []
        var waiting = 0                        // entries not complete yet
        var listed = false                     // the walk has been through all its entries
        let parent: PendingDirectory?
        let slot: Int
        init(parent: PendingDirectory?, slot: Int) { self.parent = parent; self.slot = slot }
    }
    struct LaneFile {
        let directory: RawPath
        let pending: PendingDirectory
        let slot: Int
        let status: FileStatus
        let cached: FileCacheEntry?
    }
    /// Files on the lane by ticket.
    var laneFiles: [Int: LaneFile] = [:]
    var nextTicket = 0
    /// Files read on the lane (or taken back from it) so far.
    var laneFileCount = 0
    /// Blobs the thread that read them compressed, encrypted and packed (lane files).
    var inlineBlobCount: Int { uploader.inlineCount }
    /// The root's tree, when it was written after the walk returned.
    var rootTree: BlobID?

    /// Small files of the directory being saved, concatenated in name order and chunked as one
    /// stream (a "bundle", FORMAT.md §5): each file's data becomes slices of the stream's chunks.
    /// zstd compresses one 512 KiB chunk of text ~1.6× faster than forty 12 KiB ones (and
    /// better), and a directory of small files becomes a few blobs instead of one per file.
    let bundleLimit: Int                       // files smaller than this are bundled
    let bundleBuffer: UnsafeMutableRawBufferPointer
    var bundling = false                       // saveDirectoryContents' first pass is running
    var bundleUsed = 0                         // bytes in bundleBuffer
    var bundleBase: Int64 = 0                  // stream offset of bundleBuffer[0]
    var bundleChunks: [(start: Int64, length: Int64, id: BlobID)] = []
    struct BundledFile {
        let slot: Int                          // index of its node in the directory's node list
        let start: Int64, length: Int64        // where its data lies in the stream
        let cacheRow: FileCacheEntry?          // content filled in once the stream is cut
    }
    var bundledFiles: [BundledFile] = []

    /// Files at least this large record extent fingerprints in their file-cache rows.
    static let fingerprintMinSize: Int64 = 4 << 20
    static let indexFlushBlobs = 100_000
    static let indexFlushBytes = 4 << 30
    /// Files waiting for or being read on the lane at most; the walk reads more itself.
    static let laneCapacity = 8

    /// `prefetcher`: one started before the repository was unlocked, for these options' paths
    /// (by default the backup starts its own).
    public init(repository: Repository, options: BackupOptions, progress: BackupProgress = BackupProgress(),
                prefetcher: SourcePrefetcher? = nil) throws {
        if let newer = repository.newerGeneration {
            throw StoreError(.wrongPassword, "\(repository.location): this key is of key generation \(repository.writer.generation), but the repository was rotated to generation \(newer); readers would reject its snapshots. Unlock with a current key slot")
        }
        repo = repository
        self.options = options
        self.progress = progress
        sealer = try Sealer(writer: repository.writer)
        packer = Packer(backend: repository.backend, sealer: sealer, targetSize: repository.config.packSize,
                        naming: repository.config.packNaming)
        uploader = BlobUploader(packer: packer, sealer: sealer, workers: options.workers)
        let newBlobs = NewBlobs(catalog: repository.catalog, uploader: uploader,
                                flushBlobs: Archiver.indexFlushBlobs, flushBytes: Archiver.indexFlushBytes)
        self.newBlobs = newBlobs
        let chunker = Chunker(parameters: repository.config.chunkerParameters, gear: repository.writer.gear)
        let makeSaver = {
            ContentSaver(writer: repository.writer, chunker: chunker, newBlobs: newBlobs, progress: progress,
                         maxChunk: repository.config.chunkerMaxSize)
        }
        saver = makeSaver()
        bundleLimit = min(128 << 10, repository.config.chunkerMinSize / 2)
        bundleBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: repository.config.chunkerMaxSize + bundleLimit, alignment: 64)
        self.prefetcher = prefetcher ?? SourcePrefetcher(paths: options.paths, excludes: options.excludes,
                                                         oneFileSystem: options.oneFileSystem, catalog: repository.catalog)
        laneSaver = options.laneMinimumSize == nil ? nil : makeSaver()
        saver.checkpoint = { [unowned self] in try writeIndexIfDue(fileCache: true) }
    }

    deinit {
        bundleBuffer.deallocate()
    }

    /// Runs the backup. Source-side problems (unreadable or vanished files) are recorded
    /// and make the snapshot partial; repository-side problems abort without a snapshot.
    public func run() throws -> BackupResult {
        let start = Timestamp.now()
        let clock = Monotonic.now()
        (repo.backend as? LocalBackend)?.removeAbandonedStagingFiles()
        prefetcher?.start()
        if let laneSaver {
            lane = FileLane(saver: laneSaver, capacity: Archiver.laneCapacity,
                            checkpoint: { [unowned self] in try writeIndexIfDue(fileCache: false) },
                            process: Archiver.read(hook: laneWillRead))
        }
        defer {
            prefetcher?.cancel()
            lane?.shutdown()
            uploader.shutdown()
        }
        do {
            let trie = PathTrie(paths: options.paths.map { $0.normalizedAbsolute() })
            var root: BlobID?
            if trie.selected {
                let st = try Posix.lstat(RawPath("/"))
                rootDevice = st.device
                root = try saveDirectoryContents(RawPath("/"), parent: nil, slot: 0)
            } else {
                root = try saveTrie(RawPath("/"), trie, parent: nil, slot: 0)
            }
            try finishLane()
            guard let root = root ?? rootTree else {
                throw StoreError(.io, "internal error: the backup's root tree was not written")
            }
            try writeIndex(fileCache: true)
            summary.bytesRead += saver.bytesRead + (laneSaver?.bytesRead ?? 0)
            summary.blobsAdded = newBlobs.count
            summary.bytesAdded += newBlobs.bytesWritten
            summary.durationSeconds = Monotonic.now() - clock
            var snap = Snapshot(time: start.rfc3339, host: options.host, username: SystemInfo.username, tags: options.tags,
                                paths: options.paths.map { $0.normalizedAbsolute().description }, tree: root.hex,
                                partial: !summary.errors.isEmpty, errorCount: summary.errors.count,
                                program: options.program, summary: nil)
            if summary.errors.count > 1000 { summary.errors = Array(summary.errors.prefix(1000)) }
            snap.summary = summary
            let id = try repo.saveSnapshot(snap, sealer: sealer)
            summary.bytesAdded += Int64((try? snap.encoded().count) ?? 0) + Int64(Envelope.overhead)
            snap.summary = summary
            return BackupResult(snapshotID: id, snapshot: snap)
        } catch {
            lane?.shutdown()
            uploader.shutdown()
            packer.abandon()
            throw error
        }
    }

    // MARK: - Walking

    private func note(_ error: PosixError) {
        summary.errors.append(error.description)
        progress.update { $0.errors += 1 }
    }

    /// An intermediate directory of the selected paths: real metadata, only selected children.
    /// Nil while entries are still being read on the lane (the tree is written later).
    private func saveTrie(_ path: RawPath, _ trie: PathTrie, parent: PendingDirectory?, slot: Int) throws -> BlobID? {
        let dir = PendingDirectory(parent: parent, slot: slot)
        for (name, child) in trie.children.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let p = path.appending(name)
            let st: FileStatus
            do { st = try Posix.lstat(p) } catch let e as PosixError { note(e); continue }
            if child.selected {
                rootDevice = st.device
                if let n = try saveEntry(p, name: name, status: st, xattrs: xattrs(p), cache: [:], in: dir, slot: dir.nodes.count) {
                    dir.nodes.append(n)
                }
            } else {
                guard st.kind == .directory else {
                    note(PosixError(errno: ENOTDIR, operation: "lstat", path: p))
                    continue
                }
                var n = Node(name: name, status: st)
                n.xattrs = xattrs(p)
                n.subtree = try saveTrie(p, child, parent: dir, slot: dir.nodes.count)
                dir.nodes.append(n)
            }
            try checkpoint()
        }
        return try close(dir)
    }

    /// Saves a directory's entries; its tree id, or nil while entries are still being read on
    /// the lane (the tree is written later, into `parent`'s node at `slot`).
    private func saveDirectoryContents(_ path: RawPath, parent: PendingDirectory?, slot: Int) throws -> BlobID? {
        var scan: DirectoryScan
        if let s = prefetcher?.take(path) { scan = s } else {
            prefetcher = nil
            scan = DirectoryScan.read(path, excludes: options.excludes, catalog: nil)
        }
        for e in scan.errors { note(e) }
        if let e = scan.listingError {
            note(e)
            return try saveTree(Tree(nodes: []))
        }
        if scan.fileCache == nil || scan.catalog != ObjectIdentifier(repo.catalog) || scan.catalogGeneration != repo.catalog.generation {
            scan.fileCache = try repo.catalog.fileCache(directory: path.bytes)
        }
        let cache = scan.fileCache ?? [:]
        // Everything but subdirectories first, small files into the bundle stream; the stream
        // is cut before descending, so only one directory's stream is ever buffered.
        let dir = PendingDirectory(parent: parent, slot: slot)
        dir.nodes.reserveCapacity(scan.entries.count)
        var subdirectories: [(slot: Int, path: RawPath, entry: DirectoryScan.Entry)] = []
        bundling = true
        for e in scan.entries {
            let p = path.appending(e.name)
            if e.status.kind == .directory {
                subdirectories.append((dir.nodes.count, p, e))
                dir.nodes.append(nil)
            } else if let n = try saveEntry(p, name: e.name, status: e.status, xattrs: e.xattrs, cache: cache,
                                            in: dir, slot: dir.nodes.count) {
                dir.nodes.append(n)
            }
        }
        bundling = false
        try finishBundle(&dir.nodes, directory: path)
        try checkpoint()
        for d in subdirectories {
            dir.nodes[d.slot] = try saveEntry(d.path, name: d.entry.name, status: d.entry.status, xattrs: d.entry.xattrs,
                                              cache: cache, in: dir, slot: d.slot)
            try checkpoint()
        }
        return try close(dir)
    }

    /// Marks `dir` walked: writes its tree and returns the id when no entry is still being
    /// read, else counts it as waiting in its parent and returns nil (`complete` writes it).
    private func close(_ dir: PendingDirectory) throws -> BlobID? {
        dir.listed = true
        if dir.waiting > 0 {
            dir.parent?.waiting += 1
            return nil
        }
        return try saveTree(Tree(nodes: dir.nodes.compactMap { $0 }))
    }

    /// Writes the tree of a walked directory whose last entry just completed, and completes
    /// its parent in turn when that was the parent's last.
    private func complete(_ dir: PendingDirectory) throws {
        let id = try saveTree(Tree(nodes: dir.nodes.compactMap { $0 }))
        guard let parent = dir.parent else {
            rootTree = id
            return
        }
        parent.nodes[dir.slot]?.subtree = id
        parent.waiting -= 1
        if parent.waiting == 0 && parent.listed { try complete(parent) }
    }

    private func xattrs(_ path: RawPath) -> [Node.Xattr] {
        do {
            return try DirectoryScan.attributes(of: path)
        } catch let e as PosixError {
            note(e)
            return []
        } catch { return [] }
    }

    /// Builds the node for one entry of `dir` (its node goes at `slot`); nil when the entry could
    /// not be read (recorded as an error). A file's content or a subdirectory's tree may come
    /// later (the lane).
    private func saveEntry(_ path: RawPath, name: [UInt8], status st: FileStatus, xattrs: [Node.Xattr],
                           cache: [[UInt8]: FileCacheEntry], in dir: PendingDirectory, slot: Int) throws -> Node? {
        var node = Node(name: name, status: st)
        node.xattrs = xattrs
        switch st.kind {
        case .file:
            do { try saveFile(path, node: &node, status: st, cache: cache, in: dir, slot: slot) } catch let e as PosixError {
                note(e)
                return nil
            }
            progress.update { $0.files += 1; $0.currentPath = path }
        case .directory:
            summary.dirs += 1
            progress.update { $0.dirs += 1 }
            if options.oneFileSystem && st.device != rootDevice {
                node.subtree = try saveTree(Tree(nodes: []))
            } else {
                node.subtree = try saveDirectoryContents(path, parent: dir, slot: slot)
            }
        case .symlink:
            do { node.linkTarget = try Posix.readLink(path) } catch let e as PosixError { note(e); return nil }
            summary.others += 1
        default:
            summary.others += 1
        }
        return node
    }

    private func saveFile(_ path: RawPath, node: inout Node, status st: FileStatus,
                          cache: [[UInt8]: FileCacheEntry], in dir: PendingDirectory, slot: Int) throws {
        summary.bytesTotal += st.size
        let key = HardlinkKey(device: st.device, inode: st.inode)
        if st.nlink > 1, let h = hardlinks[key] {
            // Another name of an inode already stored in this run: same content, same category.
            node.content = h.content
            count(h.category)
            progress.update { $0.bytesDone += st.size }
            return
        }
        let cached = cache[node.name]
        if let c = cached, c.matches(st) {
            node.content = c.content
            count(.unchanged)
            if c.xattrs == nil {
                // A row from before rows recorded attributes: record them (read by the scan) once.
                var row = c
                row.xattrs = node.xattrs
                pendingFileCache.append((path.parent.bytes, node.name, row))
            }
            if st.nlink > 1 { hardlinks[key] = (c.content, .unchanged) }
            progress.update { $0.bytesDone += st.size }
            return
        }
        // A large file goes to the lane (not a hardlinked one: its other names need the content
        // at once); its node gets the content when the lane is done with it.
        if let lane, let minimum = options.laneMinimumSize, st.size >= minimum, st.nlink == 1 {
            let ticket = nextTicket
            if lane.trySubmit(FileLane.Job(ticket: ticket, path: path, status: st, cached: cached)) {
                nextTicket += 1
                laneFiles[ticket] = LaneFile(directory: path.parent, pending: dir, slot: slot, status: st, cached: cached)
                dir.waiting += 1
                return
            }
        }
        let (fh, before) = try FileHandle.openRegularFile(path, lstatKind: st.kind)
        defer { fh.close() }
        let sparse = before.blocks * 512 < before.size
        // Not hardlinked files: another name in this directory would need the content before the cut.
        if bundling, st.nlink == 1, before.size > 0, before.size < Int64(bundleLimit), !sparse {
            try bundle(fh, size: Int(before.size), slot: slot, node: &node, status: st, cached: cached != nil)
            return
        }
        let stored = try saver.storeFile(fh, status: st, before: before, cached: cached)
        record(stored, node: &node, directory: path.parent, status: st, cached: cached)
    }

    /// Gives `node` the content read for it and counts it; records its file-cache row when the
    /// file did not change while it was read.
    private func record(_ stored: FileContent, node: inout Node, directory: RawPath, status st: FileStatus,
                        cached: FileCacheEntry?) {
        node.content = stored.content
        node.size = stored.size
        let category: FileCategory = cached == nil ? .new : .changed
        count(category)
        if st.nlink > 1 { hardlinks[HardlinkKey(device: st.device, inode: st.inode)] = (stored.content, category) }
        if stored.stable {
            pendingFileCache.append((directory.bytes, node.name,
                                     FileCacheEntry(size: st.size, mtimeNanos: st.mtime.nanos, ctimeNanos: st.ctime.nanos,
                                                    inode: st.inode, content: stored.content, xattrs: node.xattrs,
                                                    fingerprints: stored.fingerprints)))
        }
    }

    // MARK: - The lane

    /// Reads one file for the lane (on the lane's thread, or on the walk's for a job taken back),
    /// calling `hook` first. Its new chunks are compressed, encrypted and packed on that same
    /// thread, straight from the read window: no copy, no queue (the workers keep the small
    /// files' bundles and the walk's own files).
    static func read(hook: ((RawPath) -> Void)?) -> (FileLane.Job, ContentSaver) -> FileLane.Outcome {
        { job, saver in
            hook?(job.path)
            return read(job, with: saver)
        }
    }

    static func read(_ job: FileLane.Job, with saver: ContentSaver) -> FileLane.Outcome {
        do {
            let (fh, before) = try FileHandle.openRegularFile(job.path, lstatKind: job.status.kind)
            defer { fh.close() }
            return .stored(try saver.sealingInline {
                try saver.storeFile(fh, status: job.status, before: before, cached: job.cached)
            })
        } catch let e as PosixError {
            return .unreadable(e)
        } catch {
            return .failed(error)
        }
    }

    /// Between entries: takes the lane's finished files (with `wait`, waits for one) and
    /// writes the index when enough is queued.
    private func checkpoint(wait: Bool = false) throws {
        if let lane {
            for r in lane.takeResults(wait: wait) { try finishLaneFile(r.ticket, r.outcome) }
        }
        try writeIndexIfDue(fileCache: true)
    }

    private func finishLaneFile(_ ticket: Int, _ outcome: FileLane.Outcome) throws {
        guard let f = laneFiles.removeValue(forKey: ticket) else { return }
        laneFileCount += 1
        switch outcome {
        case .stored(let stored):
            if var n = f.pending.nodes[f.slot] {
                record(stored, node: &n, directory: f.directory, status: f.status, cached: f.cached)
                f.pending.nodes[f.slot] = n
            }
        case .unreadable(let e):
            note(e)
            f.pending.nodes[f.slot] = nil
        case .failed(let e):
            throw e
        }
        f.pending.waiting -= 1
        if f.pending.waiting == 0 && f.pending.listed { try complete(f.pending) }
    }

    /// After the walk: waits for the lane's files, reading those it has not started here.
    private func finishLane() throws {
        guard let lane else { return }
        while !laneFiles.isEmpty {
            if let job = lane.steal() {
                laneWillRead?(job.path)
                try finishLaneFile(job.ticket, Archiver.read(job, with: saver))
                try checkpoint()
            } else {
                try checkpoint(wait: true)
                if !laneFiles.isEmpty && lane.outstanding == 0 {
                    throw StoreError(.io, "internal error: \(laneFiles.count) files were handed to the file lane and never came back")
                }
            }
        }
    }

    // MARK: - Bundles of small files

    /// Appends a small file's data to the bundle stream; its node gets its content when the
    /// stream is cut (`finishBundle`).
    private func bundle(_ fh: FileHandle, size: Int, slot: Int, node: inout Node, status st: FileStatus, cached: Bool) throws {
        assert(st.nlink == 1)
        if bundleUsed + size > bundleBuffer.count { try cutBundle(final: false) }
        var got = 0
        while got < size {
            let n = try fh.pread(into: UnsafeMutableRawBufferPointer(rebasing: bundleBuffer[(bundleUsed + got)..<(bundleUsed + size)]),
                                 offset: Int64(got))
            if n == 0 { break }   // the file shrank while we read it
            got += n
        }
        summary.bytesRead += Int64(got)
        let after = try fh.status()
        let category: FileCategory = cached ? .changed : .new
        count(category)
        node.size = Int64(got)
        let stable = after.mtime == st.mtime && after.ctime == st.ctime && after.size == Int64(got)
        bundledFiles.append(BundledFile(
            slot: slot, start: bundleBase + Int64(bundleUsed), length: Int64(got),
            cacheRow: stable ? FileCacheEntry(size: st.size, mtimeNanos: st.mtime.nanos, ctimeNanos: st.ctime.nanos,
                                              inode: st.inode, content: [], xattrs: node.xattrs) : nil))
        bundleUsed += got
        progress.update { $0.bytesDone += Int64(got) }
    }

    /// Cuts the buffered stream into chunks (all of it when `final`) and stores the new ones.
    private func cutBundle(final: Bool) throws {
        var s = 0
        for c in try saver.storeChunks(bundleBuffer, from: 0, to: bundleUsed, final: final) {
            bundleChunks.append((bundleBase + Int64(c.start), Int64(c.length), c.id))
            s = c.start + c.length
        }
        if s > 0 {
            if bundleUsed > s { memmove(bundleBuffer.baseAddress!, bundleBuffer.baseAddress! + s, bundleUsed - s) }
            bundleUsed -= s
            bundleBase += Int64(s)
        }
    }

    /// Cuts the rest of the stream and gives each bundled file its slices.
    private func finishBundle(_ nodes: inout [Node?], directory: RawPath) throws {
        guard !bundledFiles.isEmpty else { return }
        try cutBundle(final: true)
        var c = 0
        for f in bundledFiles {
            let content = Archiver.extents(start: f.start, length: f.length, in: bundleChunks, from: &c)
            nodes[f.slot]?.content = content
            if var row = f.cacheRow, let name = nodes[f.slot]?.name {
                row.content = content
                pendingFileCache.append((directory.bytes, name, row))
            }
        }
        bundledFiles.removeAll(keepingCapacity: true)
        bundleChunks.removeAll(keepingCapacity: true)
        bundleUsed = 0
        bundleBase = 0
    }

    /// The extents of stream bytes `start..<start+length` over `chunks` (consecutive, in stream
    /// order): a chunk extent where the range covers a whole chunk, slices elsewhere, nothing for
    /// an empty range (a file that shrank to 0 bytes while it was read). `c` is where to start
    /// looking; files come in stream order, so it only moves forward.
    static func extents(start: Int64, length: Int64, in chunks: [(start: Int64, length: Int64, id: BlobID)],
                        from c: inout Int) -> [Node.Extent] {
        var content: [Node.Extent] = []
        let end = start + length
        while c < chunks.count && chunks[c].start + chunks[c].length <= start { c += 1 }
        var k = c
        while k < chunks.count && chunks[k].start < end {
            let ch = chunks[k]
            let from = max(start, ch.start), to = min(end, ch.start + ch.length)
            if to > from {
                content.append(from == ch.start && to == ch.start + ch.length
                               ? .chunk(ch.id, length: ch.length)
                               : .slice(ch.id, offset: from - ch.start, length: to - from))
            }
            k += 1
        }
        return content
    }

    private func count(_ c: FileCategory) {
        switch c {
        case .new: summary.filesNew += 1
        case .changed: summary.filesChanged += 1
        case .unchanged: summary.filesUnchanged += 1
        }
    }

    // MARK: - Storing blobs

    private func saveTree(_ tree: Tree) throws -> BlobID {
        let bytes = tree.encoded()
        let id = repo.writer.blobID(bytes)
        try newBlobs.storeIfNew(.tree, id) { bytes }
        return id
    }

    /// Writes the index when enough is queued since the last one (from the walk's thread with
    /// its file-cache rows, from the lane's without).
    private func writeIndexIfDue(fileCache: Bool) throws {
        if newBlobs.flushDue { try writeIndex(fileCache: fileCache) }
    }

    /// Seals packs and writes an index file for them, and with `fileCache` (only on the walk's
    /// thread) commits the file-cache rows gathered so far. The catalog inserts run while the
    /// workers finish their last blobs and the packs are fsync'd; the index file is written
    /// once its packs are durable, and the catalog commits after it.
    private func writeIndex(fileCache: Bool) throws {
        let rows = fileCache ? pendingFileCache : []
        let uploader = self.uploader, packer = self.packer, sealer = self.sealer
        try newBlobs.flush {
            var packBytes: Int64 = 0
            let indexSize = try repo.saveIndex(fileCache: rows, sealer: sealer, packs: {
                var done = try uploader.drain()
                if let last = try packer.sealCurrent() { done.append(last) }
                for p in done { packBytes += Int64(p.size) }
                return done.isEmpty ? nil : IndexFile(packs: done.map { IndexFile.Pack(id: $0.id, entries: $0.entries) })
            }, beforeStoring: { try packer.waitPublished() })
            return packBytes + Int64(indexSize)
        }
        if fileCache { pendingFileCache.removeAll() }
    }
}

extension Timespec {
    var nanos: Int64 { seconds &* 1_000_000_000 &+ Int64(nanoseconds) }
}

/// Seconds on a monotonic clock.
public enum Monotonic {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
