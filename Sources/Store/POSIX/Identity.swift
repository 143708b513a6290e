import Glibc

// User/group name <-> id lookups via the reentrant NSS calls (getpwuid_r & co.), cached
// (including misses) for the life of the process. Lookups run outside the lock; two
// concurrent misses for the same key may both query NSS, which is harmless.
extension Posix {
    public static func userName(_ uid: UInt32) -> String? {
        if let cached = identityCache.withLock({ $0.userNames[uid] }) { return cached }
        let name = lookup({ getpwuid_r(uid_t(uid), $0, $1, $2, $3) }) { String(cString: $0.pw_name) }
        identityCache.withLock { $0.userNames[uid] = .some(name) }
        return name
    }

    public static func groupName(_ gid: UInt32) -> String? {
        if let cached = identityCache.withLock({ $0.groupNames[gid] }) { return cached }
        let name = lookup({ getgrgid_r(gid_t(gid), $0, $1, $2, $3) }) { String(cString: $0.gr_name) }
        identityCache.withLock { $0.groupNames[gid] = .some(name) }
        return name
    }

    public static func uid(forUserName name: String) -> UInt32? {
        if let cached = identityCache.withLock({ $0.userIDs[name] }) { return cached }
        let id: UInt32? = name.isEmpty || name.utf8.contains(0)
            ? nil : lookup({ getpwnam_r(name, $0, $1, $2, $3) }) { UInt32($0.pw_uid) }
        identityCache.withLock { $0.userIDs[name] = .some(id) }
        return id
    }

    public static func gid(forGroupName name: String) -> UInt32? {
        if let cached = identityCache.withLock({ $0.groupIDs[name] }) { return cached }
        let id: UInt32? = name.isEmpty || name.utf8.contains(0)
            ? nil : lookup({ getgrnam_r(name, $0, $1, $2, $3) }) { UInt32($0.gr_gid) }
        identityCache.withLock { $0.groupIDs[name] = .some(id) }
        return id
    }

    /// Runs a get{pw,gr}*_r call with a growing scratch buffer (retrying ERANGE/EINTR) and
    /// extracts the result while the buffer the entry points into is still alive.
    /// nil if not found or on error.
    private static func lookup<Entry, T>(
        _ call: (UnsafeMutablePointer<Entry>, UnsafeMutablePointer<CChar>, Int,
                 UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>) -> Int32,
        _ extract: (Entry) -> T
    ) -> T? {
        let entry = UnsafeMutablePointer<Entry>.allocate(capacity: 1)
        defer { entry.deallocate() }
        var capacity = 1024
        while capacity <= 1 << 22 {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
            defer { buffer.deallocate() }
            var result: UnsafeMutablePointer<Entry>? = nil
            let code = call(entry, buffer, capacity, &result)
            if code == ERANGE { capacity *= 2; continue }
            if code == EINTR { continue }
            guard code == 0, let found = result else { return nil }
            return extract(found.pointee)
        }
        return nil
    }
}

private struct PosixIdentityCacheState {
    var userNames: [UInt32: String?] = [:]
    var groupNames: [UInt32: String?] = [:]
    var userIDs: [String: UInt32?] = [:]
    var groupIDs: [String: UInt32?] = [:]
}

/// The cache behind a pthread mutex (self-contained: no dependency on other lock types).
private final class PosixIdentityCache: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var state = PosixIdentityCacheState()

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<R>(_ body: (inout PosixIdentityCacheState) -> R) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(&state)
    }
}

private let identityCache = PosixIdentityCache()
