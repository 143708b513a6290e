import Foundation

/// A snapshot object (`snapshots/<sha256 of the ciphertext>`): JSON inside an envelope
/// (context "coffer:snapshot"). Written last, after the packs and index files it needs.
public struct Snapshot: Codable, Sendable {
    public var version: Int = 1
    public var time: String                 // RFC 3339 UTC with nanoseconds (backup start)
    public var host: String
    public var username: String
    public var tags: [String]
    public var paths: [String]              // as given, normalized absolute (lossy for invalid UTF-8; see `pathsHex`)
    public var tree: String                 // root tree blob id (hex)
    public var partial: Bool
    public var errorCount: Int
    public var program: String
    public var summary: BackupSummary?

    enum CodingKeys: String, CodingKey {
        case version, time, host, username, tags, paths, tree, partial, program, summary
        case errorCount = "error_count"
    }

    public var timestamp: Timestamp { Timestamp(rfc3339: time) ?? Timestamp(seconds: 0, nanoseconds: 0) }
    public var treeID: BlobID? { BlobID(hex: tree) }

    public func encoded() throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array(try enc.encode(self))
    }
    public static func decode(_ bytes: [UInt8], what: String) throws -> Snapshot {
        do { return try JSONDecoder().decode(Snapshot.self, from: Data(bytes)) } catch {
            throw StoreError(.corrupt, "\(what): malformed snapshot")
        }
    }
}

/// A snapshot together with its id (the object name).
public struct SnapshotRecord: Sendable {
    public let id: String
    public let snapshot: Snapshot
    /// Key generation of the snapshot's envelope.
    public var generation: UInt32 = 0
    /// The write-only key that wrote it (32 hex digits), nil when a reader wrote it.
    public var writer: String? = nil
    public var shortID: String { String(id.prefix(8)) }

    public init(id: String, snapshot: Snapshot, generation: UInt32 = 0, writer: String? = nil) {
        self.id = id
        self.snapshot = snapshot
        self.generation = generation
        self.writer = writer
    }
}

/// What one backup did; stored in the snapshot and printed by `backup --json`.
public struct BackupSummary: Codable, Sendable {
    public var filesNew = 0
    public var filesChanged = 0
    public var filesUnchanged = 0
    public var dirs = 0
    public var others = 0
    public var bytesRead: Int64 = 0          // bytes of file content read from disk
    public var bytesTotal: Int64 = 0         // logical size of all files in the snapshot
    public var bytesAdded: Int64 = 0         // bytes written to the repository (packs, index, snapshot)
    public var blobsAdded = 0
    public var durationSeconds: Double = 0
    public var errors: [String] = []

    public init() {}

    enum CodingKeys: String, CodingKey {
        case filesNew = "files_new", filesChanged = "files_changed", filesUnchanged = "files_unchanged"
        case dirs, others, errors
        case bytesRead = "bytes_read", bytesTotal = "bytes_total", bytesAdded = "bytes_added"
        case blobsAdded = "blobs_added", durationSeconds = "duration_seconds"
    }
}
