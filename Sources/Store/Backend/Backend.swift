/// The storage contract every backend (local directory now; S3 and tape later) fulfils.
///
/// Objects are opaque byte strings addressed by `ObjectName`. The contract:
/// - `put` never overwrites: putting an existing name throws `BackendError.alreadyExists`.
///   Content-addressed callers treat that as success (same name, same bytes).
/// - After `put` returns the object is durable (fsync'd) and visible to `list`.
/// - `list` never reports temporary or partially written objects, and is sorted by name.
/// - `get` with a range returns exactly that many bytes or throws (a short read is an error).
/// - Only `Backend.delete` removes objects; `backup` needs nothing beyond `AppendOnlyBackend`,
///   so the type system keeps a put-only client from deleting.
public enum ObjectKind: String, Sendable, CaseIterable {
    case config, keys, snapshots, index, locks
    case packs = "data"
}

public struct ObjectName: Hashable, Sendable, CustomStringConvertible {
    public let kind: ObjectKind
    public let id: String

    /// Validates `id`: lower-case hex of 8–64 characters ("config" for the config object),
    /// so no name can contain "/" or "..".
    public init(_ kind: ObjectKind, _ id: String) throws {
        guard ObjectName.isValid(kind, id) else {
            throw StoreError(.invalidArgument, "invalid object name \(kind.rawValue)/\(id)")
        }
        self.kind = kind
        self.id = id
    }
    public static let config = try! ObjectName(.config, "config")

    public static func isValid(_ kind: ObjectKind, _ id: String) -> Bool {
        if kind == .config { return id == "config" }
        let u = Array(id.utf8)
        guard (8...64).contains(u.count) else { return false }
        return u.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }
    public var description: String { kind == .config ? "config" : "\(kind.rawValue)/\(id)" }
}

public struct ObjectInfo: Sendable, Equatable {
    public let name: ObjectName
    public let size: Int64
}

public enum BackendError: Error, CustomStringConvertible {
    case notFound(ObjectName, location: String)   // location: where the object was looked for
    case alreadyExists(ObjectName)
    case io(String)

    public var description: String {
        switch self {
        case .notFound(_, let loc): return "\(loc): object not found"
        case .alreadyExists(let n): return "\(n): object already exists"
        case .io(let m): return m
        }
    }
}

public protocol ReadableBackend: AnyObject, Sendable {
    /// Human-readable location used in messages ("/srv/coffer", "s3://bucket/prefix").
    var location: String { get }
    /// Reads a whole object, or exactly `range` of it.
    func get(_ name: ObjectName, range: Range<Int64>?) throws -> [UInt8]
    func stat(_ name: ObjectName) throws -> ObjectInfo
    /// All complete objects of one kind, sorted by id.
    func list(_ kind: ObjectKind) throws -> [ObjectInfo]
}

public protocol AppendOnlyBackend: ReadableBackend {
    /// Stores `bytes` durably under a new name.
    func put(_ name: ObjectName, _ bytes: [UInt8]) throws
    /// A local directory where large objects (packs) are assembled before `putFile`.
    /// For the local backend it lives on the repository's filesystem so publishing is a link().
    var stagingDirectory: RawPath { get }
    /// Publishes a fully written, fsync'd file from `stagingDirectory` under `name` and removes the staged file.
    func putFile(_ name: ObjectName, from path: RawPath) throws
}

public protocol Backend: AppendOnlyBackend {
    /// Removes an object. Deleting a missing object is not an error.
    func delete(_ name: ObjectName) throws
}

extension ReadableBackend {
    public func get(_ name: ObjectName) throws -> [UInt8] { try get(name, range: nil) }

    public func exists(_ name: ObjectName) throws -> Bool {
        do { _ = try stat(name); return true } catch BackendError.notFound { return false }
    }
}
