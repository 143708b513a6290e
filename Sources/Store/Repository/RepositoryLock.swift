import Foundation
import Glibc

/// Advisory repository locks, stored as encrypted objects under `locks/`.
///
/// Locks live outside the append-only data path: they are the only objects a writer
/// deletes. `backup` and `check` take shared locks (any number may run at once, since
/// content-addressed writers never conflict); pruning takes an exclusive one.
/// A lock is stale when its process is gone (same host, pid not alive) or when it has
/// not been refreshed for 30 minutes; stale locks are removed when found.
public final class RepositoryLock: @unchecked Sendable {
    struct Content: Codable {
        var host: String
        var pid: Int32
        var username: String
        var time: String
        var exclusive: Bool
    }
    public static let staleAfter: Int64 = 30 * 60
    static let refreshEvery: Double = 5 * 60
    static let context = EnvelopeContext.lock

    private let repo: Repository
    private let exclusive: Bool
    private var name: ObjectName
    private let sealer: Sealer
    private let cond = Condition()
    private var released = false
    private var refresher: pthread_t?

    private init(repo: Repository, exclusive: Bool, name: ObjectName, sealer: Sealer) {
        self.repo = repo
        self.exclusive = exclusive
        self.name = name
        self.sealer = sealer
    }

    /// Takes a lock, removing stale ones; throws `.locked` on conflict.
    public static func acquire(_ repo: Repository, exclusive: Bool) throws -> RepositoryLock {
        let sealer = try Sealer(writer: repo.writer)
        try checkConflicts(repo, exclusive: exclusive, own: nil)
        let name = try write(repo, sealer: sealer, exclusive: exclusive)
        // Re-check: another process may have taken an exclusive lock in between.
        do { try checkConflicts(repo, exclusive: exclusive, own: name) } catch {
            try? repo.backend.delete(name)
            throw error
        }
        let lock = RepositoryLock(repo: repo, exclusive: exclusive, name: name, sealer: sealer)
        lock.refresher = PThread.start { [weak lock] in lock?.refreshLoop() }
        return lock
    }

    /// Removes the lock file.
    public func release() {
        cond.withLock {
            released = true
            cond.broadcast()
        }
        if let t = refresher { pthread_join(t, nil); refresher = nil }
        try? repo.backend.delete(name)
    }

    private func refreshLoop() {
        while true {
            let stop: Bool = cond.withLock {
                let deadline = Condition.deadline(in: RepositoryLock.refreshEvery)
                while !released {
                    if cond.timedWait(until: deadline) { break }
                }
                return released
            }
            if stop { return }
            if let n = try? RepositoryLock.write(repo, sealer: sealer, exclusive: exclusive) {
                try? repo.backend.delete(name)
                cond.withLock { name = n }
            }
        }
    }

    private static func write(_ repo: Repository, sealer: Sealer, exclusive: Bool) throws -> ObjectName {
        let c = Content(host: SystemInfo.hostname, pid: getpid(), username: SystemInfo.username,
                        time: Timestamp.now().rfc3339, exclusive: exclusive)
        let env = try sealer.seal(Array(try JSONEncoder().encode(c)), context: context)
        let name = try ObjectName(.locks, Hex.encode(SHA256Digest.of(env)))
        do { try repo.backend.put(name, env) } catch let e as BackendError { throw StoreError(.io, e.description) }
        return name
    }

    /// Lists live locks of other processes; removes stale ones.
    static func checkConflicts(_ repo: Repository, exclusive: Bool, own: ObjectName?) throws {
        let now = Timestamp.now().seconds
        for info in try repo.backend.list(.locks) where info.name != own {
            guard let env = try? repo.backend.get(info.name) else { continue }   // released meanwhile
            guard let plain = try? repo.opener.open(env, context: context, what: "\(info.name)"),
                  let c = try? JSONDecoder().decode(Content.self, from: Data(plain)) else {
                if exclusive { throw StoreError(.locked, "\(repo.location): unreadable lock \(info.name.id.prefix(8)) present; remove it with 'coffer unlock --remove-all' if no other coffer is running") }
                continue
            }
            if isStale(c, now: now) {
                try? repo.backend.delete(info.name)
                continue
            }
            if exclusive || c.exclusive {
                throw StoreError(.locked, "\(repo.location) is locked \(c.exclusive ? "exclusively " : "")by \(c.username)@\(c.host) pid \(c.pid) since \(c.time); if that process is gone, run 'coffer unlock'")
            }
        }
    }

    static func isStale(_ c: Content, now: Int64) -> Bool {
        if let t = Timestamp(rfc3339: c.time), now - t.seconds > staleAfter { return true }
        if c.host == SystemInfo.hostname && c.pid != getpid() {
            return kill(c.pid, 0) != 0 && errno == ESRCH
        }
        return false
    }

    /// Removes stale locks (all locks with `all`). Returns how many were removed.
    public static func removeLocks(_ repo: Repository, all: Bool) throws -> Int {
        var n = 0
        let now = Timestamp.now().seconds
        for info in try repo.backend.list(.locks) {
            var stale = all
            if !stale, let env = try? repo.backend.get(info.name),
               let plain = try? repo.opener.open(env, context: context, what: "\(info.name)"),
               let c = try? JSONDecoder().decode(Content.self, from: Data(plain)) {
                stale = isStale(c, now: now)
            }
            if stale { try repo.backend.delete(info.name); n += 1 }
        }
        return n
    }
}
