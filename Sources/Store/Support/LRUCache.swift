/// A byte-bounded least-recently-used cache. Thread-safe.
public final class LRUCache<Key: Hashable, Value>: @unchecked Sendable {
    private final class Entry {
        let key: Key
        let value: Value
        let cost: Int
        var prev: Entry?
        var next: Entry?
        init(key: Key, value: Value, cost: Int) { self.key = key; self.value = value; self.cost = cost }
    }
    private var map: [Key: Entry] = [:]
    private var head: Entry?   // most recent
    private var tail: Entry?   // least recent
    private var total = 0
    private let limit: Int
    private let lock = Mutex()

    public init(limit: Int) { self.limit = limit }

    public func get(_ key: Key) -> Value? {
        lock.withLock {
            guard let e = map[key] else { return nil }
            unlink(e)
            pushFront(e)
            return e.value
        }
    }

    public func put(_ key: Key, _ value: Value, cost: Int) {
        guard cost <= limit else { return }
        lock.withLock {
            if let old = map.removeValue(forKey: key) { unlink(old); total -= old.cost }
            let e = Entry(key: key, value: value, cost: cost)
            map[key] = e
            pushFront(e)
            total += cost
            while total > limit, let t = tail {
                unlink(t)
                map.removeValue(forKey: t.key)
                total -= t.cost
            }
        }
    }

    public var currentCost: Int { lock.withLock { total } }
    public func contains(_ key: Key) -> Bool { lock.withLock { map[key] != nil } }

    public func remove(_ key: Key) {
        lock.withLock {
            if let e = map.removeValue(forKey: key) { unlink(e); total -= e.cost }
        }
    }

    private func unlink(_ e: Entry) {
        e.prev?.next = e.next
        e.next?.prev = e.prev
        if head === e { head = e.next }
        if tail === e { tail = e.prev }
        e.prev = nil
        e.next = nil
    }
    private func pushFront(_ e: Entry) {
        e.next = head
        head?.prev = e
        head = e
        if tail == nil { tail = e }
    }
}

/// A pool of reusable non-thread-safe objects (zstd contexts).
public final class ObjectPool<T>: @unchecked Sendable {
    private var items: [T] = []
    private let make: () -> T
    private let lock = Mutex()
    public init(_ make: @escaping () -> T) { self.make = make }
    public func with<R>(_ body: (T) throws -> R) rethrows -> R {
        let item = lock.withLock { items.popLast() } ?? make()
        defer { lock.withLock { items.append(item) } }
        return try body(item)
    }
}
