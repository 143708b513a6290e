import Glibc

/// Compresses, encrypts and packs blobs on worker threads.
///
/// The archiver thread reads, chunks, names (HMAC) and deduplicates; it hands new
/// blobs here. In-flight plaintext is bounded (`maxInFlight` bytes) so memory does
/// not grow with the input. The first worker error is kept and re-thrown to the
/// submitter, which aborts the backup.
final class BlobUploader: @unchecked Sendable {
    private struct Job {
        let type: BlobType
        let id: BlobID
        let plaintext: [UInt8]
    }

    private let packer: Packer
    private let sealer: Sealer
    private let cond = Condition()
    private var queue: [Job?] = []   // taken slots are set to nil at once, releasing their plaintext
    private var head = 0
    private var inFlightBytes = 0
    private var inFlightJobs = 0
    private var inlined = 0
    private var stopping = false
    private var firstError: Error?
    private var finished: [Packer.Finished] = []
    private var threads: [pthread_t] = []
    private let maxInFlight: Int
    private let level: Int32

    init(packer: Packer, sealer: Sealer, workers: Int, maxInFlight: Int = 32 << 20, compressionLevel: Int32 = 1) {
        self.packer = packer
        self.sealer = sealer
        self.maxInFlight = maxInFlight
        self.level = compressionLevel
        for _ in 0..<max(1, workers) {
            threads.append(PThread.start { [unowned self] in self.work() })
        }
    }

    /// Queues a blob; blocks while too much is in flight. Throws a worker's error.
    func submit(type: BlobType, id: BlobID, plaintext: [UInt8]) throws {
        try cond.withLock {
            while inFlightBytes > 0 && inFlightBytes + plaintext.count > maxInFlight && firstError == nil {
                cond.wait()
            }
            if let e = firstError { throw e }
            queue.append(Job(type: type, id: id, plaintext: plaintext))
            inFlightBytes += plaintext.count
            inFlightJobs += 1
            cond.broadcast()
        }
    }

    /// Blobs stored by `storeReserved` so far.
    var inlineCount: Int { cond.withLock { inlined } }

    /// Test hooks: called by `storeReserved` before it compresses (reserved, no lock held), and
    /// by `drain()` when it is about to wait for blobs in flight (with the uploader's lock held).
    var inlineWillStore: ((BlobID) -> Void)?
    var drainWillWait: (() -> Void)?

    /// A compressor with the workers' settings.
    func makeCompressor() -> ZstdCompressor { ZstdCompressor(level: level) }

    /// Counts one blob as in flight before the caller stores it with `storeReserved` (so that
    /// `drain()` waits for it from this moment). Throws an earlier worker's error.
    func reserveInline() throws {
        try cond.withLock {
            if let e = firstError { throw e }
            inFlightJobs += 1
        }
    }

    /// Compresses, encrypts and packs one blob reserved with `reserveInline` on the calling
    /// thread (no copy, no queue), with the caller's compressor. Throws its own error (which
    /// the workers' submitters see too).
    func storeReserved(type: BlobType, id: BlobID, plaintext: UnsafeRawBufferPointer, compressor: ZstdCompressor) throws {
        inlineWillStore?(id)
        do {
            let env = try BlobCodec.encode(plaintext, type: type, id: id, compressor: compressor, sealer: sealer)
            let done = try packer.add(type: type, id: id, rawLength: plaintext.count, envelope: env)
            cond.withLock {
                if let done { finished.append(done) }
                inFlightJobs -= 1
                inlined += 1
                cond.broadcast()
            }
        } catch {
            cond.withLock {
                if firstError == nil { firstError = error }
                inFlightJobs -= 1
                cond.broadcast()
            }
            throw error
        }
    }

    /// Waits until every queued blob is in a pack; returns packs finished since the last call.
    func drain() throws -> [Packer.Finished] {
        try cond.withLock {
            if inFlightJobs > 0 && firstError == nil { drainWillWait?() }
            while inFlightJobs > 0 && firstError == nil { cond.wait() }
            if let e = firstError { throw e }
            defer { finished.removeAll() }
            return finished
        }
    }

    /// Stops the workers (after draining whatever is queued, or at once after an error).
    func shutdown() {
        cond.withLock {
            stopping = true
            cond.broadcast()
        }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    private func work() {
        let compressor = ZstdCompressor(level: level)
        while true {
            let job: Job? = cond.withLock {
                while head >= queue.count && !stopping { cond.wait() }
                guard head < queue.count, firstError == nil else { return nil }
                let j = queue[head]
                queue[head] = nil
                head += 1
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                } else if head > 256 {
                    queue.removeFirst(head)
                    head = 0
                }
                return j
            }
            guard let job else { return }
            do {
                let env = try job.plaintext.withUnsafeBytes {
                    try BlobCodec.encode($0, type: job.type, id: job.id, compressor: compressor, sealer: sealer)
                }
                let done = try packer.add(type: job.type, id: job.id, rawLength: job.plaintext.count, envelope: env)
                cond.withLock {
                    if let done { finished.append(done) }
                    inFlightBytes -= job.plaintext.count
                    inFlightJobs -= 1
                    cond.broadcast()
                }
            } catch {
                cond.withLock {
                    if firstError == nil { firstError = error }
                    inFlightBytes -= job.plaintext.count
                    inFlightJobs -= 1
                    cond.broadcast()
                }
            }
        }
    }
}

/// Starts a pthread running `body` (our own threads, kept off Swift's cooperative pool);
/// the caller joins it.
public enum PThread {
    private final class Box { let body: () -> Void; init(_ b: @escaping () -> Void) { body = b } }

    public static func start(_ body: @escaping () -> Void) -> pthread_t {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return t
    }
}
