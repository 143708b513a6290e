import Glibc
import Dispatch

/// The blobs this backup run has queued and the catalog does not know yet, shared by the
/// threads that store file content (the walk and the file lane).
///
/// One lock orders every "is it known? then queue it" decision against the others and against
/// index flushes, so a chunk two threads meet at once is queued once, and a flush never
/// forgets a blob the catalog does not know yet.
final class NewBlobs: @unchecked Sendable {
    private let lock = Mutex()
    private let catalog: Catalog
    private let uploader: BlobUploader
    private var pending = Set<BlobID>()
    private var pendingBytes = 0
    private var added = 0
    private var indexed: Int64 = 0
    private let flushBlobs: Int, flushBytes: Int

    init(catalog: Catalog, uploader: BlobUploader, flushBlobs: Int, flushBytes: Int) {
        self.catalog = catalog
        self.uploader = uploader
        self.flushBlobs = flushBlobs
        self.flushBytes = flushBytes
    }

    /// Blobs queued by this run.
    var count: Int { lock.withLock { added } }

    /// Bytes the flushes reported written (packs and index files).
    var bytesWritten: Int64 { lock.withLock { indexed } }

    /// Whether enough is queued since the last flush that the index should be written.
    var flushDue: Bool { lock.withLock { pending.count >= flushBlobs || pendingBytes >= flushBytes } }

    /// Whether the repository has the blob or this run queued it.
    func isKnown(_ id: BlobID) throws -> Bool {
        try lock.withLock { try knownLocked(id) }
    }

    /// Queues the blob `plaintext()` under `id` unless it is known; true when it was queued.
    /// Blocks while the uploader has too much in flight; throws a worker's error.
    @discardableResult
    func storeIfNew(_ type: BlobType, _ id: BlobID, _ plaintext: () -> [UInt8]) throws -> Bool {
        try lock.withLock {
            if try knownLocked(id) { return false }
            let bytes = plaintext()
            notePendingLocked(id, bytes: bytes.count)
            try uploader.submit(type: type, id: id, plaintext: bytes)
            return true
        }
    }

    /// Runs `body` (writing the index of everything queued; it returns the bytes that wrote)
    /// while nothing else is queued or looked up, then starts a new pending set: the catalog
    /// knows those blobs now. Flushes from several threads take turns.
    func flush(_ body: () throws -> Int64) throws {
        try lock.withLock {
            indexed += try body()
            pending.removeAll()
            pendingBytes = 0
        }
    }

    /// A compressor with the workers' settings, for a thread that seals blobs inline.
    func makeCompressor() -> ZstdCompressor { uploader.makeCompressor() }

    /// Like `storeIfNew`, but a new blob is compressed, encrypted and packed on the calling
    /// thread from `plaintext` (no copy). The decision and the uploader's in-flight count are
    /// taken under the lock (a flush that follows waits for this blob to be in a pack); the
    /// work is done after it.
    @discardableResult
    func storeIfNewInline(_ type: BlobType, _ id: BlobID, _ plaintext: UnsafeRawBufferPointer,
                          compressor: ZstdCompressor) throws -> Bool {
        let isNew = try lock.withLock { () -> Bool in
            if try knownLocked(id) { return false }
            try uploader.reserveInline()
            notePendingLocked(id, bytes: plaintext.count)
            return true
        }
        if isNew { try uploader.storeReserved(type: type, id: id, plaintext: plaintext, compressor: compressor) }
        return isNew
    }

    private func notePendingLocked(_ id: BlobID, bytes: Int) {
        pending.insert(id)
        pendingBytes += bytes
        added += 1
    }

    private func knownLocked(_ id: BlobID) throws -> Bool {
        if pending.contains(id) { return true }
        return try catalog.contains(id)
    }
}

/// What reading one file produced.
struct FileContent {
    let content: [Node.Extent]
    let fingerprints: [ExtentFingerprint]?
    /// The bytes `content` covers (what was read, holes included).
    let size: Int64
    /// The file's size, mtime and ctime did not change while it was read (its file-cache row
    /// may be recorded).
    let stable: Bool
}

/// Reads files, cuts them into chunks, names the chunks and queues the new ones: one per
/// thread that reads (the walk, the file lane), each with its own window buffer.
final class ContentSaver {
    let writer: WriterKeys
    let chunker: Chunker
    let newBlobs: NewBlobs
    let progress: BackupProgress
    let maxChunk: Int
    let buffer: UnsafeMutableRawBufferPointer
    /// File bytes this saver read.
    var bytesRead: Int64 = 0
    /// Called once per window of a file: may write the index (when enough is queued) or
    /// throw to stop reading (the backup is aborting).
    var checkpoint: () throws -> Void = {}
    /// True during `sealingInline`: new chunks are compressed, encrypted and packed on this
    /// saver's thread, with its own compressor.
    private var sealsInline = false
    private lazy var compressor = newBlobs.makeCompressor()

    init(writer: WriterKeys, chunker: Chunker, newBlobs: NewBlobs, progress: BackupProgress, maxChunk: Int) {
        self.writer = writer
        self.chunker = chunker
        self.newBlobs = newBlobs
        self.progress = progress
        self.maxChunk = maxChunk
        // A longest chunk of lookahead and 1 MiB more: the window is cut up to its last cut
        // point, which leaves less than a chunk to move to the front before the next read.
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxChunk + (1 << 20), alignment: 64)
    }

    deinit { buffer.deallocate() }

    /// Runs `body` with new chunks compressed, encrypted and packed on this thread straight
    /// from the read window (`BlobUploader.storeReserved`) instead of copied and queued for the
    /// workers.
    func sealingInline<R>(_ body: () throws -> R) rethrows -> R {
        sealsInline = true
        defer { sealsInline = false }
        return try body()
    }

    /// Stores the content of the open file `fh` (lstat'd as `st` by the walk, fstat'd as
    /// `before` after opening it). A large file records fingerprints of its extents; when it
    /// changed since `cached`, the extents whose bytes are still in place are kept without
    /// chunking and naming them again.
    func storeFile(_ fh: FileHandle, status st: FileStatus, before: FileStatus, cached: FileCacheEntry?) throws -> FileContent {
        let sparse = before.blocks * 512 < before.size
        let fingerprinted = !sparse && before.size >= Archiver.fingerprintMinSize
        let content: [Node.Extent], fingerprints: [ExtentFingerprint]?
        if fingerprinted, let c = cached, let previous = c.fingerprints, previous.count == c.content.count {
            (content, fingerprints) = try storeContentReusing(fh, size: before.size, previous: c.content, fingerprints: previous)
        } else {
            (content, fingerprints) = try storeContent(fh, size: before.size, sparse: sparse, fingerprint: fingerprinted)
        }
        let after = try fh.status()
        let size = content.reduce(0) { $0 + $1.length }
        return FileContent(content: content, fingerprints: fingerprints, size: size,
                           stable: after.mtime == st.mtime && after.ctime == st.ctime && after.size == size)
    }

    /// Reads a file's data extents, chunks them and stores new chunks; with `fingerprint` (not
    /// for sparse files) also returns one fingerprint per extent.
    func storeContent(_ fh: FileHandle, size: Int64, sparse: Bool,
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
            try checkpoint()
            bytesRead += try window.fill(from: pos, lookahead: maxChunk)
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
    func storeChunks(_ buf: UnsafeMutableRawBufferPointer, from: Int, to: Int, final: Bool,
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
            if sealsInline {
                try newBlobs.storeIfNewInline(.data, named[i].id, UnsafeRawBufferPointer(rebasing: buf[c.start..<(c.start + c.length)]),
                                              compressor: compressor)
            } else {
                try newBlobs.storeIfNew(.data, named[i].id) {
                    Array(UnsafeRawBufferPointer(rebasing: buf[c.start..<(c.start + c.length)]))
                }
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
        let keys = writer
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
}
