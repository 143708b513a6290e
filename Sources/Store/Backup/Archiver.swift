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
    let chunker: Chunker
    let bufferSize: Int
    let buffer: UnsafeMutableRawBufferPointer

    var pending = Set<BlobID>()
    var pendingBytes = 0
    var pendingFileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)] = []
    var hardlinks: [HardlinkKey: (content: [Node.Extent], category: FileCategory)] = [:]
    enum FileCategory { case new, changed, unchanged }
    var summary = BackupSummary()
    var rootDevice: UInt64 = 0
    /// Reads directories ahead of the walk (nil once it fell out of step: the walk reads itself).
    var prefetcher: SourcePrefetcher?

    struct HardlinkKey: Hashable { let device: UInt64; let inode: UInt64 }

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
        chunker = Chunker(parameters: repository.config.chunkerParameters, gear: repository.writer.gear)
        bufferSize = 2 * repository.config.chunkerMaxSize
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 64)
        bundleLimit = min(128 << 10, repository.config.chunkerMinSize / 2)
        bundleBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: repository.config.chunkerMaxSize + bundleLimit, alignment: 64)
        self.prefetcher = prefetcher ?? SourcePrefetcher(paths: options.paths, excludes: options.excludes,
                                                         oneFileSystem: options.oneFileSystem, catalog: repository.catalog)
    }

    deinit {
        buffer.deallocate()
        bundleBuffer.deallocate()
    }

    /// Runs the backup. Source-side problems (unreadable or vanished files) are recorded
    /// and make the snapshot partial; repository-side problems abort without a snapshot.
    public func run() throws -> BackupResult {
        let start = Timestamp.now()
        let clock = Monotonic.now()
        (repo.backend as? LocalBackend)?.removeAbandonedStagingFiles()
        prefetcher?.start()
        defer {
            prefetcher?.cancel()
            uploader.shutdown()
        }
        do {
            let trie = PathTrie(paths: options.paths.map { $0.normalizedAbsolute() })
            let root: BlobID
            if trie.selected {
                let st = try Posix.lstat(RawPath("/"))
                rootDevice = st.device
                root = try saveDirectoryContents(RawPath("/"))
            } else {
                root = try saveTrie(RawPath("/"), trie)
            }
            try flush(final: true)
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
    private func saveTrie(_ path: RawPath, _ trie: PathTrie) throws -> BlobID {
        var nodes: [Node] = []
        for (name, child) in trie.children.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
            let p = path.appending(name)
            let st: FileStatus
            do { st = try Posix.lstat(p) } catch let e as PosixError { note(e); continue }
            if child.selected {
                rootDevice = st.device
                if let n = try saveEntry(p, name: name, status: st, xattrs: xattrs(p), cache: [:]) { nodes.append(n) }
            } else {
                guard st.kind == .directory else {
                    note(PosixError(errno: ENOTDIR, operation: "lstat", path: p))
                    continue
                }
                var n = Node(name: name, status: st)
                n.xattrs = xattrs(p)
                n.subtree = try saveTrie(p, child)
                nodes.append(n)
            }
        }
        return try saveTree(Tree(nodes: nodes))
    }

    private func saveDirectoryContents(_ path: RawPath) throws -> BlobID {
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
        var nodes: [Node?] = []
        nodes.reserveCapacity(scan.entries.count)
        var subdirectories: [(slot: Int, path: RawPath, entry: DirectoryScan.Entry)] = []
        bundling = true
        for e in scan.entries {
            let p = path.appending(e.name)
            if e.status.kind == .directory {
                subdirectories.append((nodes.count, p, e))
                nodes.append(nil)
            } else if let n = try saveEntry(p, name: e.name, status: e.status, xattrs: e.xattrs, cache: cache, slot: nodes.count) {
                nodes.append(n)
            }
        }
        bundling = false
        try finishBundle(&nodes, directory: path)
        for d in subdirectories {
            nodes[d.slot] = try saveEntry(d.path, name: d.entry.name, status: d.entry.status, xattrs: d.entry.xattrs, cache: cache)
        }
        return try saveTree(Tree(nodes: nodes.compactMap { $0 }))
    }

    private func xattrs(_ path: RawPath) -> [Node.Xattr] {
        do {
            return try DirectoryScan.attributes(of: path)
        } catch let e as PosixError {
            note(e)
            return []
        } catch { return [] }
    }

    /// Builds the node for one entry; nil when the entry could not be read (recorded as an error).
    private func saveEntry(_ path: RawPath, name: [UInt8], status st: FileStatus, xattrs: [Node.Xattr],
                           cache: [[UInt8]: FileCacheEntry], slot: Int = -1) throws -> Node? {
        var node = Node(name: name, status: st)
        node.xattrs = xattrs
        switch st.kind {
        case .file:
            do { try saveFile(path, node: &node, status: st, cache: cache, slot: slot) } catch let e as PosixError {
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
                node.subtree = try saveDirectoryContents(path)
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
                          cache: [[UInt8]: FileCacheEntry], slot: Int) throws {
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
        let fh = try FileHandle.openForReading(path)
        defer { fh.close() }
        let before = try fh.status()
        let sparse = before.blocks * 512 < before.size
        // Not hardlinked files: another name in this directory would need the content before the cut.
        if bundling, slot >= 0, st.nlink == 1, before.size > 0, before.size < Int64(bundleLimit), !sparse {
            try bundle(fh, size: Int(before.size), slot: slot, node: &node, status: st, cached: cached != nil)
            return
        }
        // A large file records fingerprints of its extents; when it changes, the extents whose
        // bytes are still in place are kept without chunking and hashing them again.
        let fingerprinted = !sparse && before.size >= Archiver.fingerprintMinSize
        let content: [Node.Extent], fingerprints: [ExtentFingerprint]?
        if fingerprinted, let c = cached, let previous = c.fingerprints, previous.count == c.content.count {
            (content, fingerprints) = try storeContentReusing(fh, size: before.size, previous: c.content, fingerprints: previous)
        } else {
            (content, fingerprints) = try storeContent(fh, size: before.size, sparse: sparse, fingerprint: fingerprinted)
        }
        let after = try fh.status()
        node.content = content
        node.size = content.reduce(0) { $0 + $1.length }
        let category: FileCategory = cached == nil ? .new : .changed
        count(category)
        if st.nlink > 1 { hardlinks[key] = (content, category) }
        let stable = after.mtime == st.mtime && after.ctime == st.ctime && after.size == node.size
        if stable {
            pendingFileCache.append((path.parent.bytes, node.name,
                                     FileCacheEntry(size: st.size, mtimeNanos: st.mtime.nanos, ctimeNanos: st.ctime.nanos,
                                                    inode: st.inode, content: content, xattrs: node.xattrs,
                                                    fingerprints: fingerprints)))
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
        for c in try storeChunks(bundleBuffer, from: 0, to: bundleUsed, final: final) {
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

    /// Reads a file's data extents, chunks them and stores new chunks; with `fingerprint` (not
    /// for sparse files) also returns one fingerprint per extent.
    private func storeContent(_ fh: FileHandle, size: Int64, sparse: Bool,
                              fingerprint: Bool = false) throws -> ([Node.Extent], [ExtentFingerprint]?) {
        var extents: [Node.Extent] = []
        var fingerprints: [ExtentFingerprint]? = fingerprint && !sparse ? [] : nil
        let regions = sparse ? try fh.dataExtents(size: size) : (size > 0 ? [(offset: Int64(0), length: size)] : [])
        var pos: Int64 = 0
        for r in regions {
            if r.offset > pos { extents.append(.hole(length: r.offset - pos)) }
            let got = try chunkRegion(fh, offset: r.offset, length: r.length, into: &extents, fingerprints: &fingerprints)
            pos = r.offset + got
            if got < r.length { return (extents, fingerprints) }   // the file shrank while we read it
        }
        if sparse && pos < size { extents.append(.hole(length: size - pos)) }
        return (extents, fingerprints)
    }

    private func chunkRegion(_ fh: FileHandle, offset: Int64, length: Int64, into extents: inout [Node.Extent],
                             fingerprints: inout [ExtentFingerprint]?) throws -> Int64 {
        var window = FileWindow(fh: fh, buffer: buffer, start: offset, end: offset + length)
        var pos = offset
        while true {
            summary.bytesRead += try window.fill(from: pos, lookahead: repo.config.chunkerMaxSize)
            let avail = window.available(from: pos)
            if avail == 0 { return pos - offset }
            let rel = window.index(of: pos)
            for c in try storeChunks(buffer, from: rel, to: rel + avail, final: window.atEnd, fingerprint: fingerprints != nil) {
                extents.append(.chunk(c.id, length: Int64(c.length)))
                if let f = c.fingerprint { fingerprints?.append(f) }
                chunkDone(Int64(c.length))
                pos = window.offset(of: c.start + c.length)
            }
        }
    }

    /// Progress for `length` bytes of file data chunked (or kept) and stored.
    func chunkDone(_ length: Int64) {
        progress.update { $0.bytesDone += length; $0.bytesRead += length }
    }

    /// Cuts `buf[from..<to]` into chunks (up to `to` when `final`, else up to the last cut the
    /// data decides), names them (HMAC, in parallel) and stores the new ones, in order.
    private func storeChunks(_ buf: UnsafeMutableRawBufferPointer, from: Int, to: Int, final: Bool,
                             fingerprint: Bool = false) throws -> [StoredChunk] {
        var cuts: [(start: Int, length: Int)] = []
        var s = from
        while s < to {
            guard let cut = chunker.nextCut(UnsafeRawBufferPointer(rebasing: buf[s..<to]), isFinal: final) else { break }
            cuts.append((s, cut))
            s += cut
        }
        return try storeCuts(cuts, in: buf, fingerprint: fingerprint)
    }

    /// Names the chunks at `cuts` (and fingerprints them) and stores the new ones, in order.
    func storeCuts(_ cuts: [(start: Int, length: Int)], in buf: UnsafeMutableRawBufferPointer,
                   fingerprint: Bool) throws -> [StoredChunk] {
        let named = nameChunks(cuts, in: UnsafeRawBufferPointer(buf), fingerprint: fingerprint)
        var out: [StoredChunk] = []
        out.reserveCapacity(cuts.count)
        for (i, c) in cuts.enumerated() {
            if try !isKnown(named[i].id) {
                try store(.data, named[i].id, Array(UnsafeRawBufferPointer(rebasing: buf[c.start..<(c.start + c.length)])))
            }
            out.append(StoredChunk(start: c.start, length: c.length, id: named[i].id, fingerprint: named[i].fingerprint))
        }
        return out
    }

    struct StoredChunk {
        let start: Int, length: Int
        let id: BlobID
        let fingerprint: ExtentFingerprint?
    }

    /// HMACs (and with `fingerprint`, fingerprints under fresh nonces) of the chunks at `cuts`
    /// in `buf`; several chunks are done on two threads.
    private func nameChunks(_ cuts: [(start: Int, length: Int)], in buf: UnsafeRawBufferPointer,
                            fingerprint: Bool) -> [(id: BlobID, fingerprint: ExtentFingerprint?)] {
        let keys = repo.writer
        func name(_ c: (start: Int, length: Int)) -> (id: BlobID, fingerprint: ExtentFingerprint?) {
            let bytes = UnsafeRawBufferPointer(rebasing: buf[c.start..<(c.start + c.length)])
            return (keys.blobID(bytes), fingerprint ? keys.fingerprint(bytes, nonce: SecureRandomBytes.get(ExtentFingerprint.nonceLength)) : nil)
        }
        let total = cuts.reduce(0) { $0 + $1.length }
        if cuts.count < 2 || total < 1 << 20 { return cuts.map(name) }
        var out = [(id: BlobID, fingerprint: ExtentFingerprint?)?](repeating: nil, count: cuts.count)
        out.withUnsafeMutableBufferPointer { o in
            let dst = o
            DispatchQueue.concurrentPerform(iterations: cuts.count) { i in dst[i] = name(cuts[i]) }
        }
        return out.map { $0! }
    }

    // MARK: - Storing blobs

    func isKnown(_ id: BlobID) throws -> Bool {
        if pending.contains(id) { return true }
        return try repo.catalog.contains(id)
    }

    private func store(_ type: BlobType, _ id: BlobID, _ plaintext: [UInt8]) throws {
        pending.insert(id)
        pendingBytes += plaintext.count
        summary.blobsAdded += 1
        try uploader.submit(type: type, id: id, plaintext: plaintext)
        if pending.count >= Archiver.indexFlushBlobs || pendingBytes >= Archiver.indexFlushBytes {
            try flush(final: false)
        }
    }

    private func saveTree(_ tree: Tree) throws -> BlobID {
        let bytes = tree.encoded()
        let id = repo.writer.blobID(bytes)
        if try !isKnown(id) { try store(.tree, id, bytes) }
        return id
    }

    /// Seals packs, writes an index file for them and commits file-cache rows. The catalog
    /// inserts run while the workers finish their last blobs and the packs are fsync'd; the
    /// index file is written once its packs are durable, and the catalog commits after it.
    private func flush(final: Bool) throws {
        let indexSize = try repo.saveIndex(fileCache: pendingFileCache, sealer: sealer, packs: {
            var done = try uploader.drain()
            if let last = try packer.sealCurrent() { done.append(last) }
            for p in done { summary.bytesAdded += Int64(p.size) }
            return done.isEmpty ? nil : IndexFile(packs: done.map { IndexFile.Pack(id: $0.id, entries: $0.entries) })
        }, beforeStoring: { try packer.waitPublished() })
        summary.bytesAdded += Int64(indexSize)
        pendingFileCache.removeAll()
        pending.removeAll()
        pendingBytes = 0
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
