import Glibc

/// A second thread that reads large files while the walk goes on.
///
/// A backup's work comes in two kinds that load a machine differently: large files are read,
/// chunked and named (HMAC) and their mostly incompressible chunks written to packs, which
/// keeps the disk busy; directories of small files are mostly compression on the uploader's
/// workers. Walked in order, the two take turns. The walk hands large files to the lane and
/// goes on, so the kinds overlap; directories whose files are still on the lane have their
/// trees written when the last one is done (`Archiver.PendingDirectory`).
///
/// Jobs are done in order by one thread; `steal()` gives a job that has not started back to
/// the walk, which reads it itself when it has nothing else left to do.
final class FileLane: @unchecked Sendable {
    struct Job {
        let ticket: Int            // the archiver's reference
        let path: RawPath
        let status: FileStatus     // as the walk saw it (lstat)
        let cached: FileCacheEntry?
    }

    enum Outcome {
        case stored(FileContent)
        /// The file could not be read: it is left out and the snapshot is partial.
        case unreadable(PosixError)
        /// The repository side failed: the backup aborts.
        case failed(Error)
    }

    private let cond = Condition()
    private var queue: [Job] = []
    private var results: [(ticket: Int, outcome: Outcome)] = []
    private var running = 0              // jobs taken by the thread, not yet in `results`
    private var stopping = false
    private let capacity: Int
    private var thread: pthread_t?
    let saver: ContentSaver
    private let process: (Job, ContentSaver) -> Outcome

    /// `capacity`: jobs waiting or running at most (`trySubmit` declines more). `checkpoint`
    /// runs on the lane's thread once per window read (see `ContentSaver.checkpoint`).
    init(saver: ContentSaver, capacity: Int, checkpoint: @escaping () throws -> Void,
         process: @escaping (Job, ContentSaver) -> Outcome) {
        self.saver = saver
        self.capacity = max(1, capacity)
        self.process = process
        saver.checkpoint = { [unowned self] in
            if cond.withLock({ stopping }) { throw StoreError(.io, "backup stopped") }
            try checkpoint()
        }
        thread = PThread.start { [unowned self] in self.work() }
    }

    /// Jobs submitted whose results have not been taken.
    var outstanding: Int { cond.withLock { queue.count + running + results.count } }

    /// Queues a job unless `capacity` jobs are waiting or running.
    func trySubmit(_ job: Job) -> Bool {
        cond.withLock {
            guard !stopping, queue.count + running < capacity else { return false }
            queue.append(job)
            cond.broadcast()
            return true
        }
    }

    /// The most recently queued job that has not started, taken back from the lane.
    func steal() -> Job? {
        cond.withLock { queue.popLast() }
    }

    /// Results so far; with `wait`, blocks until there is one unless no job is waiting or running.
    func takeResults(wait: Bool) -> [(ticket: Int, outcome: Outcome)] {
        cond.withLock {
            while wait && results.isEmpty && (running > 0 || !queue.isEmpty) { cond.wait() }
            defer { results.removeAll(keepingCapacity: true) }
            return results
        }
    }

    /// Stops the thread after the file it is reading (whose reading stops at the next window)
    /// and drops the jobs waiting. Idempotent.
    func shutdown() {
        cond.withLock {
            stopping = true
            queue.removeAll()
            cond.broadcast()
        }
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    private func work() {
        while true {
            let job: Job? = cond.withLock {
                while queue.isEmpty && !stopping { cond.wait() }
                guard !stopping else { return nil }
                running += 1
                return queue.removeFirst()
            }
            guard let job else { return }
            let outcome = process(job, saver)
            cond.withLock {
                running -= 1
                results.append((job.ticket, outcome))
                cond.broadcast()
            }
        }
    }
}
