import Glibc
import Store

/// An open file in the mount: its extents with their start offsets.
final class OpenFile: @unchecked Sendable {
    private weak var entry: MountFS.Entry?   // weak: the entry holds this file
    let extents: [Node.Extent]
    let starts: [Int64]
    let size: Int64
    var nextSequential: Int64 = 0        // guarded by MountFS.lock

    /// The file's path, for log messages.
    var path: String { entry?.path ?? "(a file the kernel has forgotten)" }

    init(entry: MountFS.Entry, node: Node) {
        self.entry = entry
        extents = node.content
        var s: [Int64] = []
        s.reserveCapacity(extents.count)
        var pos: Int64 = 0
        for e in extents { s.append(pos); pos += e.length }
        starts = s
        size = pos
    }

    /// Index of the extent containing `offset` (offset < size).
    func extentIndex(_ offset: Int64) -> Int {
        var lo = 0, hi = starts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }
}

extension MountFS {
    /// Opens a regular file for reading; any write access is refused with EROFS.
    public func open(_ id: UInt64, flags: Int32) throws(FSError) -> UInt64 {
        if flags & O_ACCMODE != O_RDONLY || flags & (O_TRUNC | O_APPEND | O_CREAT) != 0 { throw FSError(EROFS) }
        return files.open(try file(id))
    }

    /// The readable view of regular file `id`: made on its first open or read, kept with the
    /// entry until the kernel forgets it. Making it starts the prefetch of the next files.
    func file(_ id: UInt64) throws(FSError) -> OpenFile {
        let e = try entry(id)
        if let f = lock.withLock({ e.file }) { return f }
        guard case .node(_, let n) = e.kind else { throw FSError(EISDIR) }
        guard n.kind == .file else { throw n.kind == .directory ? FSError(EISDIR) : FSError(EINVAL) }
        let made = OpenFile(entry: e, node: n)
        let (f, first) = lock.withLock { () -> (OpenFile, Bool) in
            if let other = e.file { return (other, false) }
            e.file = made
            return (made, true)
        }
        if first, let tree = e.parentTree {
            let parentID = e.parentID
            siblingWindows.async { [self] in
                if !lock.withLock({ stopped }) { prefetchSiblings(after: n.name, in: tree, parentID: parentID) }
            }
        }
        return f
    }

    /// tar, cp -a and rsync read a directory's files in listing order: when one is opened,
    /// fetch the first chunks of the files after it (up to 8 MiB) in the background, and put
    /// them into the kernel's page cache for the files the kernel knows (after a readdirplus,
    /// all of them): those files are then read without a request reaching the daemon.
    func prefetchSiblings(after name: [UInt8], in tree: BlobID, parentID: UInt64) {
        guard let t = trees.get(tree) else { return }
        let lo = MountFS.position(of: name, in: t)
        // Only extend the window when the reader is within 8 files of its end.
        let start: Int? = lock.withLock {
            let done = prefetchedUpTo[tree] ?? 0
            guard done < lo + 8 else { return nil }
            return max(done, lo + 1)
        }
        guard let start else { return }
        // Up to 8 MiB of first extents, of at most 32 distinct blobs (small files bundled
        // together share one) and 512 files, in the order tar and cp -a read them: a
        // subdirectory's files (depth first) come before the files listed after it.
        // Those of a subdirectory whose tree is at hand (read ahead when this one was listed)
        // are only loaded: the kernel has no inode for them yet, so nothing can be pushed;
        // the reader's first request there then finds its chunk decrypted (tar of the bench's
        // 426 small-file directories stalled on one load per directory).
        var budget: Int64 = 8 << 20
        var picked: [(id: BlobID, offset: Int64, length: Int64, name: [UInt8]?)] = []
        var blobs = 0
        func full() -> Bool { budget <= 0 || blobs >= 32 || picked.count >= 512 }
        func add(_ n: Node, pushable: Bool) {
            guard n.kind == .file, let first = n.content.first, let (id, offset) = first.data else { return }
            if picked.last?.id != id { blobs += 1 }
            picked.append((id, offset, first.length, pushable ? n.name : nil))
            budget -= first.length
        }
        /// A file, or (depth first) the files of a directory whose tree is at hand.
        func visit(_ n: Node, pushable: Bool, depth: Int = 0) {
            guard n.kind == .directory else { return add(n, pushable: pushable) }
            guard depth < 16, let sub = n.subtree, let st = trees.get(sub) else { return }
            for c in st.nodes where !full() { visit(c, pushable: false, depth: depth + 1) }
        }
        var i = start
        while i < t.nodes.count && !full() {
            visit(t.nodes[i], pushable: true)
            i += 1
        }
        // Past the end of this directory the walk goes on in its parent, after it (and so on
        // up): there tar's next directory begins, and its first file is read through a request.
        var dir = i < t.nodes.count ? nil : lock.withLock { entries[parentID] }
        var levels = 0
        while !full(), levels < 16, let d = dir, let upID = d.parentTree, let up = trees.get(upID) {
            var j = MountFS.position(of: d.name, in: up)
            if j < up.nodes.count, up.nodes[j].name == d.name { j += 1 }
            while j < up.nodes.count && !full() {
                visit(up.nodes[j], pushable: false)
                j += 1
            }
            dir = d.parent
            levels += 1
        }
        let push = pagePusher.isActive
        let items = lock.withLock { () -> [(BlobID, PushTarget?)] in
            if prefetchedUpTo.count > 4096 { prefetchedUpTo.removeAll() }
            prefetchedUpTo[tree] = i
            return picked.map { p in
                let node = push ? p.name.flatMap { children[ChildKey(parent: parentID, name: $0)] } : nil
                return (p.id, node.map { PushTarget(inode: $0, offset: p.offset, length: p.length) })
            }
        }
        prefetcher.enqueueSiblings(items)
    }

    /// Index of the first node of `t` (sorted by name) not before `name`.
    static func position(of name: [UInt8], in t: Tree) -> Int {
        var lo = 0, hi = t.nodes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if t.nodes[mid].name.lexicographicallyPrecedes(name) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Called by a prefetch thread with a sibling's first chunk: into the page cache of each
    /// node that has not been read through the daemon yet (those reads filled it already).
    func pushLoaded(_ data: [UInt8], to targets: [PushTarget]) {
        for t in targets where lock.withLock({ entries[t.inode].map { $0.file == nil } ?? false }) {
            guard t.offset >= 0, t.offset + t.length <= Int64(data.count) else { continue }
            _ = pagePusher.push(t.inode, data[Int(t.offset)..<Int(t.offset + t.length)])
        }
    }

    public func release(_ handle: UInt64) {
        files.close(handle)
    }

    /// Reads up to `count` bytes at `offset` through an open handle.
    public func read(_ handle: UInt64, offset: Int64, count: Int) throws(FSError) -> FSReadData {
        guard let f = files.get(handle) else { throw FSError(EBADF) }
        return try read(f, offset: offset, count: count)
    }

    /// Reads up to `count` bytes at `offset` of file `id` (the kernel sends no open when the
    /// filesystem declines opens: see `FuseSession`).
    public func read(inode id: UInt64, offset: Int64, count: Int) throws(FSError) -> FSReadData {
        try read(try file(id), offset: offset, count: count)
    }

    /// Damaged or missing data gives EIO (and one log line). The reply is slices of the cached
    /// chunks it touches (and of a zero buffer for holes): nothing is copied.
    func read(_ f: OpenFile, offset: Int64, count: Int) throws(FSError) -> FSReadData {
        guard offset < f.size, count > 0 else { return FSReadData() }
        let end = min(f.size, offset + Int64(count))
        var i = f.extentIndex(offset)
        var out = FSReadData()
        var pos = offset
        while pos < end {
            let start = f.starts[i]
            let ext = f.extents[i]
            let from = Int(pos - start), to = Int(min(end, start + ext.length) - start)
            switch ext {
            case .hole:
                out.appendZeros(to - from)
            case .chunk(let id, let len):
                let data = try chunk(id, length: len, file: f, offset: start)
                out.append(data[from..<to])
            case .slice(let id, let at, let len):
                let data = try blob(id, file: f, offset: start)
                guard Int64(data.count) >= at + len else {
                    report(id, file: f, offset: start, "chunk has \(data.count) bytes, the file needs \(at + len)")
                    throw FSError(EIO)
                }
                out.append(data[(Int(at) + from)..<(Int(at) + to)])
            }
            pos = start + Int64(to)
            i += 1
        }
        // The read-ahead starts after the last extent touched (the one holding `end - 1`).
        readAhead(f, from: i, offset: offset, end: end)
        return out
    }

    /// A chunk of `f` (at file offset `offset`) of exactly `length` bytes, or EIO.
    private func chunk(_ id: BlobID, length: Int64, file f: OpenFile, offset: Int64) throws(FSError) -> [UInt8] {
        let data = try blob(id, file: f, offset: offset)
        guard data.count == Int(length) else {
            report(id, file: f, offset: offset, "chunk has \(data.count) bytes, expected \(length)")
            throw FSError(EIO)
        }
        return data
    }

    /// Sequential reader (this read starts near where the last one ended; the kernel sends
    /// readahead requests concurrently, so "near" counts): fetch the chunks from extent
    /// `from` on in the background.
    private func readAhead(_ f: OpenFile, from: Int, offset: Int64, end: Int64) {
        let sequential = lock.withLock { () -> Bool in
            defer { f.nextSequential = max(f.nextSequential, end) }
            return abs(offset - f.nextSequential) <= 8 << 20
        }
        guard sequential else { return }
        var ahead: [BlobID] = []
        var j = from
        while j < f.extents.count && ahead.count < prefetcher.depth {
            if let (id, _) = f.extents[j].data, ahead.last != id { ahead.append(id) }
            j += 1
        }
        prefetcher.enqueueAhead(ahead)
    }

    func blob(_ id: BlobID, file: OpenFile, offset: Int64) throws(FSError) -> [UInt8] {
        do { return try prefetcher.load(id) { try repo.loadBlob(id, type: .data) } } catch let e as StoreError {
            report(id, file: file, offset: offset, e.message)
            throw FSError(EIO)
        } catch {
            report(id, file: file, offset: offset, "\(error)")
            throw FSError(EIO)
        }
    }

    /// One log line per damaged chunk: which file, where, and what the store said (it names the pack).
    func report(_ id: BlobID, file: OpenFile, offset: Int64, _ message: String) {
        let first = lock.withLock { reported.insert(id).inserted }
        if first { log("\(file.path): read error at offset \(offset): \(message)") }
    }
}

/// Where a loaded sibling chunk goes: bytes `offset..<offset+length` of it become the start of
/// node `inode`'s page cache.
struct PushTarget {
    let inode: UInt64
    let offset: Int64
    let length: Int64
}

/// Open file handles, by number.
final class OpenFiles: @unchecked Sendable {
    private var files: [UInt64: OpenFile] = [:]
    private var next: UInt64 = 1
    private let lock = Mutex()

    func open(_ f: OpenFile) -> UInt64 {
        lock.withLock { defer { next += 1 }; files[next] = f; return next }
    }
    func get(_ h: UInt64) -> OpenFile? { lock.withLock { files[h] } }
    func close(_ h: UInt64) { lock.withLock { files[h] = nil } }
}

/// Loads chunks ahead of readers on its own threads (never Swift's cooperative pool), warming
/// the repository's decrypted-chunk cache. Two lanes:
/// - ahead: the next chunks of a file being read sequentially; every thread serves it (one
///   large file decompresses in parallel; `enqueueAhead`);
/// - siblings: the first chunks of the files after an opened one (`enqueueSiblings`), handed
///   to `onPush` for the kernel's page cache. A small-file reader (tar, cp -a, `find -exec
///   cat`) then reads most files without a request reaching the daemon, so all threads serve
///   this lane too: on 2 cores, tar of 17,000 small files made 12,000 read requests with one
///   sibling thread and 2,200 with two (1.63–1.97 s against 2.14–2.41 s when the host was
///   quiet). Without the push, a second thread made it 35 % slower.
final class Prefetcher: @unchecked Sendable {
    let depth: Int
    private let repo: Repository
    private let cond = Condition()
    private var queues: [[BlobID]] = [[], []]     // by lane: ahead, siblings
    private var queued = Set<BlobID>()
    private var loading = Set<BlobID>()           // by prefetch threads
    private var readerLoading = Set<BlobID>()     // by readers (`load`)
    private var pushAfterReader = Set<BlobID>()   // taken from the queue while a reader loads it
    private var loadWaiters = 0                   // threads waiting for a load of another
    private var pushTo: [BlobID: [PushTarget]] = [:]  // sibling chunks: where in which page caches
    private var stopping = false
    private var finished = 0                      // threads that have returned from work
    private var threads: [pthread_t] = []
    private var onPush: (([UInt8], [PushTarget]) -> Void)?

    /// `threads` workers, each serving both lanes (the ahead lane first).
    init(repository: Repository, threads count: Int, depth: Int) {
        repo = repository
        self.depth = depth
        for _ in 0..<count {
            threads.append(PThread.start { [unowned self] in self.work() })
        }
    }

    /// The prefetch threads' nice value.
    static let nice: Int32 = 5

    /// One thread per core, 2–8.
    convenience init(repository: Repository, depth: Int) {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        self.init(repository: repository, threads: min(8, max(2, cores)), depth: depth)
    }

    /// Sets the receiver of each loaded sibling chunk that has nodes to push it to.
    func setPush(_ push: @escaping ([UInt8], [PushTarget]) -> Void) { cond.withLock { onPush = push } }

    /// Queues the next chunks of a file being read sequentially (those not cached or queued).
    func enqueueAhead(_ ids: [BlobID]) {
        guard !ids.isEmpty else { return }
        cond.withLock {
            var added = false
            for id in ids where !queued.contains(id) && !loading.contains(id) && !readerLoading.contains(id)
                && !repo.isCached(id) {
                queues[0].append(id)
                queued.insert(id)
                added = true
            }
            guard added else { return }
            trim(0)
            cond.broadcast()
        }
    }

    /// Queues sibling chunks; those with a node are loaded even when cached, to be pushed.
    func enqueueSiblings(_ items: [(BlobID, PushTarget?)]) {
        guard !items.isEmpty else { return }
        cond.withLock {
            var added = false
            for (id, node) in items {
                if let node { pushTo[id, default: []].append(node) }
                // A chunk a reader is loading is queued all the same when it has nodes to push to:
                // it is pushed (from the cache) once that load is done.
                guard !queued.contains(id) && !loading.contains(id)
                    && (node != nil || !(readerLoading.contains(id) || repo.isCached(id))) else { continue }
                queues[1].append(id)
                queued.insert(id)
                added = true
            }
            guard added else { return }
            trim(1)
            cond.broadcast()
        }
    }

    /// A reader that jumped: drop the oldest, stale work. Call with the lock held.
    private func trim(_ l: Int) {
        guard queues[l].count > 64 else { return }
        let drop = queues[l].count - 64
        for id in queues[l].prefix(drop) { queued.remove(id); pushTo[id] = nil }
        queues[l].removeFirst(drop)
    }

    /// A reader's load of `id` (`body`, which caches what it loads): one load of a chunk at a
    /// time. It waits while a prefetch thread or another reader loads `id` (and then hits the
    /// cache); a prefetch thread that takes `id` meanwhile leaves it to this load and pushes it
    /// afterwards. Without this, a
    /// reader that got ahead of the sibling prefetch decrypted and decompressed the same chunk
    /// as a prefetch thread: 30 of the 110 MiB read from packs during a tar of 17,000 small files.
    func load(_ id: BlobID, _ body: () throws -> [UInt8]) rethrows -> [UInt8] {
        cond.withLock {
            waitWhileLoaded(id)
            readerLoading.insert(id)
        }
        defer {
            cond.withLock {
                readerLoading.remove(id)
                // Its page-cache push, taken off the queue during this load: next in line.
                if pushAfterReader.remove(id) != nil, !queued.contains(id) {
                    queues[1].insert(id, at: 0)
                    queued.insert(id)
                    cond.broadcast()
                } else if loadWaiters > 0 {
                    cond.broadcast()
                }
            }
        }
        return try body()
    }

    /// For tests: whether a reader is loading `id`, and how many pushes wait for readers' loads.
    func readerIsLoading(_ id: BlobID) -> Bool { cond.withLock { readerLoading.contains(id) } }
    var pushesWaitingForReaders: Int { cond.withLock { pushAfterReader.count } }

    /// Waits (lock held) until nobody loads `id`.
    private func waitWhileLoaded(_ id: BlobID) {
        while loading.contains(id) || readerLoading.contains(id) {
            loadWaiters += 1
            cond.wait()
            loadWaiters -= 1
        }
    }

    /// Stops the threads. One blocked in the kernel (a page-cache push that waits for a read
    /// the stopped session will never answer) is left behind after 5 s; the process is ending.
    func stop() {
        let deadline = Condition.deadline(in: 5)
        let allDone = cond.withLock { () -> Bool in
            stopping = true
            cond.broadcast()
            while finished < threads.count { if cond.timedWait(until: deadline) { return false } }
            return true
        }
        for t in threads { if allDone { pthread_join(t, nil) } else { pthread_detach(t) } }
        threads.removeAll()
    }

    private func work() {
        // Below the FUSE threads: a request the reader waits for comes before loading ahead.
        // Both cores are busy during a tar (tar, its pipe, the prefetch), and at the same
        // priority a woken FUSE thread often waited for a prefetch thread's time slice:
        // nice 5 made a tar of the 1 GiB bench snapshot 3-10 % faster (9 of 10 interleaved
        // pairs, two runs; the small files alone 10 %, the large ones 16 %). On Linux
        // the nice value is per thread, and `who` 0 names the calling one.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Prefetcher.nice)
        while true {
            let id: BlobID? = cond.withLock {
                while true {
                    while !stopping, queues.allSatisfy({ $0.isEmpty }) { cond.wait() }
                    if stopping { finished += 1; cond.broadcast(); return nil }
                    let l = queues[0].isEmpty ? 1 : 0
                    let id = queues[l].removeFirst()
                    queued.remove(id)
                    // A reader is loading it: never a second load. Its push (if any) is queued
                    // again when that load is done (`load`); meanwhile, on to the next chunk.
                    if readerLoading.contains(id) {
                        if pushTo[id] != nil { pushAfterReader.insert(id) }
                        continue
                    }
                    loading.insert(id)
                    return id
                }
            }
            guard let id else { return }
            let data = try? repo.loadBlob(id, type: .data)
            // Wake only if a reader waits for a load: a broadcast per chunk also woke every idle
            // prefetch thread, which found nothing to do (one wasted context switch per file).
            let (nodes, push) = cond.withLock { () -> ([PushTarget]?, (([UInt8], [PushTarget]) -> Void)?) in
                loading.remove(id)
                if loadWaiters > 0 { cond.broadcast() }
                return (pushTo.removeValue(forKey: id), onPush)
            }
            // After `loading` is cleared: a push waits for the kernel's lock on the page, which a
            // read of that page holds until the daemon answers it — possibly from a reader waiting in `load`.
            if let data, let nodes, let push { push(data, nodes) }
        }
    }
}

/// Puts prefetched file data into the kernel's page cache (FUSE_NOTIFY_STORE). The FUSE session
/// installs the push once mounted and removes it before unmounting; `waitIdle` lets it wait for
/// pushes in flight before it frees the session.
public final class PagePusher: @unchecked Sendable {
    public typealias Push = (UInt64, ArraySlice<UInt8>) -> Bool
    private let cond = Condition()
    private var body: Push?
    private var inFlight = 0

    public func install(_ push: Push?) { cond.withLock { body = push } }
    var isActive: Bool { cond.withLock { body != nil } }

    /// Stores `bytes` as the start of node `ino`; false when nothing was stored.
    func push(_ ino: UInt64, _ bytes: ArraySlice<UInt8>) -> Bool {
        guard let p = cond.withLock({ () -> Push? in
            if body != nil { inFlight += 1 }
            return body
        }) else { return false }
        defer { cond.withLock { inFlight -= 1; if inFlight == 0 { cond.broadcast() } } }
        return p(ino, bytes)
    }

    /// Waits up to `seconds` for pushes in flight to return; false if one is still running.
    public func waitIdle(seconds: Double) -> Bool {
        let deadline = Condition.deadline(in: seconds)
        return cond.withLock {
            while inFlight > 0 { if cond.timedWait(until: deadline) { return inFlight == 0 } }
            return true
        }
    }
}
