import Foundation

/// Where a blob lives.
public struct BlobLocation: Sendable, Equatable {
    public let type: BlobType
    public let pack: String
    public let offset: Int
    public let length: Int
    public let rawLength: Int
}

/// A cached "this file was already stored" record, keyed by (directory, name).
public struct FileCacheEntry: Sendable, Equatable {
    public var size: Int64
    public var mtimeNanos: Int64
    public var ctimeNanos: Int64
    public var inode: UInt64
    public var content: [Node.Extent]
    /// The file's extended attributes when it was stored (nil: not recorded, rows from before
    /// they were). Setting or removing an attribute changes ctime, so a file whose size, mtime,
    /// ctime and inode match still has these: its `llistxattr` is skipped.
    public var xattrs: [Node.Xattr]?
    /// One per extent of `content` (all of them chunks) for files of at least
    /// `Archiver.fingerprintMinSize`: when the file changes, an extent whose bytes are still in
    /// place is kept without chunking or hashing it again (nil: none recorded).
    public var fingerprints: [ExtentFingerprint]?

    public init(size: Int64, mtimeNanos: Int64, ctimeNanos: Int64, inode: UInt64, content: [Node.Extent],
                xattrs: [Node.Xattr]? = nil, fingerprints: [ExtentFingerprint]? = nil) {
        self.size = size
        self.mtimeNanos = mtimeNanos
        self.ctimeNanos = ctimeNanos
        self.inode = inode
        self.content = content
        self.xattrs = xattrs
        self.fingerprints = fingerprints
    }

    /// True when `st` is the file this row describes, unchanged since.
    public func matches(_ st: FileStatus) -> Bool {
        size == st.size && mtimeNanos == st.mtime.nanos && ctimeNanos == st.ctime.nanos && inode == st.inode
    }
}

/// A data extent's fingerprint in the file cache: the GMAC (AES-256-GCM over an empty
/// plaintext) of the extent's bytes under the writer's fingerprint key and a random nonce used
/// for this tag only. It never leaves the local catalog.
public struct ExtentFingerprint: Sendable, Equatable {
    public static let nonceLength = 12, tagLength = 16
    public let nonce: [UInt8]
    public let tag: [UInt8]
    public init(nonce: [UInt8], tag: [UInt8]) {
        precondition(nonce.count == ExtentFingerprint.nonceLength && tag.count == ExtentFingerprint.tagLength)
        self.nonce = nonce
        self.tag = tag
    }
}

/// The local SQLite catalog: a cache of the repository's index files, snapshot list and
/// per-file metadata. The repository stays the only source of truth: the catalog records which
/// index files and snapshots it has ingested, picks up new ones on `sync`, and rebuilds itself
/// from scratch when one it knows has disappeared or when it belongs to another repository.
///
/// All methods are thread-safe (one connection, serialized by a lock).
public final class Catalog: @unchecked Sendable {
    static let schemaVersion = "2"
    public let path: String
    let db: SQLiteDatabase
    let lock = Mutex()
    private var stmts: [String: SQLiteStatement] = [:]
    /// Pack hashes by row id, filled by `lookup` (guarded by `lock`): a blob lookup then reads
    /// one row instead of joining two tables and making the 64-character hash string again.
    private var packHashes: [Int64: String] = [:]
    /// Bumped by `clear`: file-cache rows read before a clear are no longer valid.
    private var clears: UInt64 = 0
    public var generation: UInt64 { lock.withLock { clears } }

    public init(path: String, repositoryID: String) throws {
        self.path = path
        db = try SQLiteDatabase(path: path)
        try db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        let schema = try metaValue("schema")
        let repo = try metaValue("repository")
        if schema != Catalog.schemaVersion || (repo != nil && repo != repositoryID) {
            try db.execute("""
                DROP TABLE IF EXISTS index_files; DROP TABLE IF EXISTS packs; DROP TABLE IF EXISTS blobs;
                DROP TABLE IF EXISTS snapshots; DROP TABLE IF EXISTS filecache; DROP TABLE IF EXISTS key_usage;
                DELETE FROM meta;
                """)
        }
        try db.execute("""
            CREATE TABLE IF NOT EXISTS index_files(name TEXT PRIMARY KEY);
            CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL);
            CREATE TABLE IF NOT EXISTS blobs(id BLOB PRIMARY KEY, type INTEGER NOT NULL, pack INTEGER NOT NULL,
                offset INTEGER NOT NULL, length INTEGER NOT NULL, rawlen INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS snapshots(id TEXT PRIMARY KEY, json BLOB NOT NULL, generation INTEGER NOT NULL, writer TEXT);
            CREATE TABLE IF NOT EXISTS filecache(dir BLOB NOT NULL, name BLOB NOT NULL, size INTEGER, mtime INTEGER,
                ctime INTEGER, inode INTEGER, content BLOB, xattrs BLOB, fingerprints BLOB, PRIMARY KEY(dir, name)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS key_usage(slot TEXT PRIMARY KEY, last_used TEXT NOT NULL);
            INSERT OR REPLACE INTO meta(key, value) VALUES('schema', '\(Catalog.schemaVersion)');
            INSERT OR REPLACE INTO meta(key, value) VALUES('repository', '\(repositoryID)');
            """)
        // Catalogs made before file-cache rows recorded extended attributes and extent
        // fingerprints: add the columns (NULL in old rows, which then work as before).
        for column in ["xattrs", "fingerprints"] {
            func exists() throws -> Bool {
                var found = false
                try db.prepare("PRAGMA table_info(filecache)").forEachRow([]) { if $0.text(1) == column { found = true } }
                return found
            }
            if try exists() { continue }
            do { try db.execute("ALTER TABLE filecache ADD COLUMN \(column) BLOB") } catch {
                if try !exists() { throw error }   // else another process added it first
            }
        }
    }

    private func metaValue(_ key: String) throws -> String? {
        let s = try db.prepare("SELECT value FROM meta WHERE key = ?")
        try s.bind([.text(key)])
        return try s.step() ? s.text(0) : nil
    }

    func statement(_ sql: String) throws -> SQLiteStatement {
        if let s = stmts[sql] { return s }
        let s = try db.prepare(sql)
        stmts[sql] = s
        return s
    }

    // MARK: - Sync with the repository

    /// Brings the catalog up to date with the repository's index files and snapshots.
    /// Snapshots are listed before index files: a backup writes its index before its snapshot,
    /// so every snapshot seen here has its blobs indexed. An object that fails to decrypt or
    /// parse is skipped (and retried next time) with a warning, so one damaged file never takes
    /// the whole repository offline. Returns whether it rebuilt from scratch, and the warnings.
    @discardableResult
    ///
    /// A write-only key's catalog passes `snapshots: false` (it cannot decrypt them); index files
    /// from before index keys existed (version 1 envelopes) are recorded as seen without content.
    public func sync(backend: ReadableBackend, opener: Opener, snapshots: Bool = true) throws -> (rebuilt: Bool, warnings: [String]) {
        let snapshotNames = snapshots ? Set(try backend.list(.snapshots).map(\.name.id)) : []
        let names = Set(try backend.list(.index).map(\.name.id))
        let known = try lock.withLock { () -> Set<String> in
            var k = Set<String>()
            try statement("SELECT name FROM index_files").forEachRow([]) { k.insert($0.text(0)) }
            return k
        }
        var rebuilt = false
        if !known.isSubset(of: names) {
            // An index file we ingested is gone (prune, or another repository at this path): start over.
            try clear()
            rebuilt = true
        }
        var warnings: [String] = []
        let have = rebuilt ? [] : known
        for name in names.sorted() where !have.contains(name) {
            let obj = try ObjectName(.index, name)
            do {
                let plain = try opener.open(try backend.get(obj), context: EnvelopeContext.index, what: "\(backend.location)/\(obj)")
                try addIndex(name: name, file: try IndexFile.decode(plain, what: "\(obj)"), fileCache: [])
            } catch let e as StoreError where e.code == .corrupt {
                warnings.append("skipping damaged index file \(obj): \(e.message) (run 'coffer check')")
            } catch let e as StoreError where e.code == .writeOnly {
                try addIndex(name: name, file: IndexFile(packs: []), fileCache: [])
            }
        }
        if snapshots { warnings += try syncSnapshots(backend: backend, opener: opener, names: snapshotNames) }
        return (rebuilt, warnings)
    }

    func syncSnapshots(backend: ReadableBackend, opener: Opener, names: Set<String>) throws -> [String] {
        let known = try lock.withLock { () -> Set<String> in
            var k = Set<String>()
            try statement("SELECT id FROM snapshots").forEachRow([]) { k.insert($0.text(0)) }
            return k
        }
        for gone in known.subtracting(names) {
            try lock.withLock { try statement("DELETE FROM snapshots WHERE id = ?").forEachRow([.text(gone)]) { _ in } }
        }
        var warnings: [String] = []
        for name in names.subtracting(known).sorted() {
            let obj = try ObjectName(.snapshots, name)
            do {
                let env = try backend.get(obj)
                let plain = try opener.open(env, context: EnvelopeContext.snapshot, what: "\(backend.location)/\(obj)")
                _ = try Snapshot.decode(plain, what: "\(obj)")
                try addSnapshot(id: name, json: plain, envelope: env)
            } catch let e as StoreError where e.code == .corrupt {
                warnings.append("skipping damaged snapshot \(name.prefix(8)): \(e.message) (run 'coffer check')")
            }
        }
        return warnings
    }

    /// Forgets everything learned from the repository (and the file cache, whose chunks may be gone).
    public func clear() throws {
        try lock.withLock {
            try db.transaction {
                try db.execute("DELETE FROM index_files; DELETE FROM blobs; DELETE FROM packs; DELETE FROM snapshots; DELETE FROM filecache;")
            }
            packHashes.removeAll()
            clears &+= 1
        }
    }

    // MARK: - Blobs

    /// Records an index file's content (and file-cache rows whose chunks it covers) in one transaction.
    public func addIndex(name: String?, file: IndexFile, fileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)]) throws {
        try addIndex(fileCache: fileCache, index: { (name ?? "", file) })
    }

    /// Records file-cache rows and an index file in one transaction, in an order that lets the
    /// caller's slow steps overlap the inserts: the file-cache rows go in first; then `index`
    /// runs (a backup drains its workers and seals its last pack there) and returns the index
    /// file to record with its name ("" records its packs and blobs without a name; nil records
    /// none); its packs and blobs go in; then `beforeCommit` runs (a backup waits for its packs
    /// to be durable and writes the index file there). The transaction commits only after
    /// that, so a crash never leaves the catalog naming data the repository may have lost; an
    /// error anywhere rolls it back.
    public func addIndex(fileCache: [(dir: [UInt8], name: [UInt8], entry: FileCacheEntry)],
                         index: () throws -> (name: String, file: IndexFile)?,
                         beforeCommit: () throws -> Void = {}) throws {
        try lock.withLock {
            try db.transaction {
                let fc = try statement("INSERT OR REPLACE INTO filecache(dir, name, size, mtime, ctime, inode, content, xattrs, fingerprints) VALUES(?,?,?,?,?,?,?,?,?)")
                for row in fileCache {
                    try fc.forEachRow([.blob(row.dir), .blob(row.name), .integer(row.entry.size), .integer(row.entry.mtimeNanos),
                                       .integer(row.entry.ctimeNanos), .integer(Int64(bitPattern: row.entry.inode)),
                                       .blob(Catalog.encodeExtents(row.entry.content)),
                                       row.entry.xattrs.map { .blob(Catalog.encodeXattrs($0)) } ?? .null,
                                       row.entry.fingerprints.map { .blob(Catalog.encodeFingerprints($0)) } ?? .null]) { _ in }
                }
                if let (name, file) = try index() {
                    let packIns = try statement("INSERT OR IGNORE INTO packs(hash) VALUES(?)")
                    let packSel = try statement("SELECT id FROM packs WHERE hash = ?")
                    let blobIns = try statement("INSERT OR IGNORE INTO blobs(id, type, pack, offset, length, rawlen) VALUES(?,?,?,?,?,?)")
                    for p in file.packs {
                        try packIns.forEachRow([.text(p.id)]) { _ in }
                        var pid: Int64 = 0
                        try packSel.forEachRow([.text(p.id)]) { pid = $0.int64(0) }
                        for e in p.entries {
                            try blobIns.forEachRow([.blob(e.id.bytes), .integer(Int64(e.type.rawValue)), .integer(pid),
                                                    .integer(Int64(e.offset)), .integer(Int64(e.length)), .integer(Int64(e.rawLength))]) { _ in }
                        }
                    }
                    if !name.isEmpty {
                        try statement("INSERT OR IGNORE INTO index_files(name) VALUES(?)").forEachRow([.text(name)]) { _ in }
                    }
                }
                try beforeCommit()
            }
        }
    }

    public func lookup(_ id: BlobID) throws -> BlobLocation? {
        try lock.withLock {
            var row: (type: BlobType, pack: Int64, offset: Int, length: Int, rawLength: Int)?
            try statement("SELECT type, pack, offset, length, rawlen FROM blobs WHERE id = ?")
                .forEachRow([.blob(id.bytes)]) { s in
                    guard let t = BlobType(rawValue: UInt8(truncatingIfNeeded: s.int64(0))) else { return }
                    row = (t, s.int64(1), Int(s.int64(2)), Int(s.int64(3)), Int(s.int64(4)))
                }
            guard let row else { return nil }
            var hash = packHashes[row.pack]
            if hash == nil {
                try statement("SELECT hash FROM packs WHERE id = ?").forEachRow([.integer(row.pack)]) { hash = $0.text(0) }
                guard let found = hash else { return nil }   // the JOIN this replaces would find no row either
                if packHashes.count >= 1 << 16 { packHashes.removeAll() }   // bounded on huge repositories
                packHashes[row.pack] = found
            }
            return BlobLocation(type: row.type, pack: hash!, offset: row.offset, length: row.length, rawLength: row.rawLength)
        }
    }

    public func contains(_ id: BlobID) throws -> Bool {
        try lock.withLock {
            var found = false
            try statement("SELECT 1 FROM blobs WHERE id = ?").forEachRow([.blob(id.bytes)]) { _ in found = true }
            return found
        }
    }

    /// Every pack the index knows, with the number of blobs and the end of its last blob.
    public func packs() throws -> [(id: String, blobs: Int, end: Int)] {
        try lock.withLock {
            var out: [(String, Int, Int)] = []
            try statement("SELECT p.hash, COUNT(*), MAX(b.offset + b.length) FROM blobs b JOIN packs p ON p.id = b.pack GROUP BY p.hash ORDER BY p.hash")
                .forEachRow([]) { out.append(($0.text(0), Int($0.int64(1)), Int($0.int64(2)))) }
            return out
        }
    }

    /// Ids of the blobs the index places in one pack.
    public func blobs(inPack pack: String) throws -> [BlobID] {
        try lock.withLock {
            var out: [BlobID] = []
            try statement("SELECT b.id FROM blobs b JOIN packs p ON p.id = b.pack WHERE p.hash = ?")
                .forEachRow([.text(pack)]) { out.append(BlobID(bytes: $0.blob(0))) }
            return out
        }
    }

    public var blobCount: Int {
        (try? lock.withLock { () -> Int in
            var n = 0
            try statement("SELECT COUNT(*) FROM blobs").forEachRow([]) { n = Int($0.int64(0)) }
            return n
        }) ?? 0
    }

    // MARK: - Snapshots

    /// Records a snapshot; `envelope` (its header) tells the key generation and writer.
    public func addSnapshot(id: String, json: [UInt8], envelope: [UInt8]) throws {
        let generation = envelope.count >= 5 ? Int64(envelope[1...4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) : 0
        let writer: SQLiteValue = Envelope.writerID(of: envelope).map { .text(Hex.encode($0)) } ?? .null
        try lock.withLock {
            try statement("INSERT OR REPLACE INTO snapshots(id, json, generation, writer) VALUES(?, ?, ?, ?)")
                .forEachRow([.text(id), .blob(json), .integer(generation), writer]) { _ in }
        }
    }

    /// All snapshots, oldest first.
    public func snapshots() throws -> [SnapshotRecord] {
        try lock.withLock {
            var out: [SnapshotRecord] = []
            try statement("SELECT id, json, generation, writer FROM snapshots").forEachRow([]) { s in
                let id = s.text(0)
                out.append(SnapshotRecord(id: id, snapshot: try Snapshot.decode(s.blob(1), what: "catalog snapshot \(id)"),
                                          generation: UInt32(truncatingIfNeeded: s.int64(2)),
                                          writer: s.isNull(3) ? nil : s.text(3)))
            }
            return out.sorted { ($0.snapshot.timestamp, $0.id) < ($1.snapshot.timestamp, $1.id) }
        }
    }

    // MARK: - Key slot usage (local to this machine; kept by `clear`)

    /// Records that key slot `slot` (its 64-hex name) unlocked the repository at `time` (RFC 3339).
    public func recordKeyUse(slot: String, time: String) throws {
        guard !slot.isEmpty else { return }
        try lock.withLock {
            try statement("INSERT OR REPLACE INTO key_usage(slot, last_used) VALUES(?, ?)").forEachRow([.text(slot), .text(time)]) { _ in }
        }
    }

    /// Slot name → when it last unlocked the repository on this machine.
    public func keyUsage() throws -> [String: String] {
        try lock.withLock {
            var out: [String: String] = [:]
            try statement("SELECT slot, last_used FROM key_usage").forEachRow([]) { out[$0.text(0)] = $0.text(1) }
            return out
        }
    }

    // MARK: - File cache

    public func fileCache(directory: [UInt8]) throws -> [[UInt8]: FileCacheEntry] {
        try lock.withLock {
            var out: [[UInt8]: FileCacheEntry] = [:]
            try statement("SELECT name, size, mtime, ctime, inode, content, xattrs, fingerprints FROM filecache WHERE dir = ?")
                .forEachRow([.blob(directory)]) { s in
                    guard let c = try? Catalog.decodeExtents(s.blob(5)) else { return }
                    // An unreadable attribute list or fingerprint list only costs the work it would have saved.
                    let x = s.isNull(6) ? nil : try? Catalog.decodeXattrs(s.blob(6))
                    let f = s.isNull(7) ? nil : Catalog.decodeFingerprints(s.blob(7), extents: c)
                    out[s.blob(0)] = FileCacheEntry(size: s.int64(1), mtimeNanos: s.int64(2), ctimeNanos: s.int64(3),
                                                    inode: UInt64(bitPattern: s.int64(4)), content: c, xattrs: x,
                                                    fingerprints: f)
                }
            return out
        }
    }

    static func encodeExtents(_ extents: [Node.Extent]) -> [UInt8] {
        var n = Node(name: [0x78], kind: .file)
        n.content = extents
        return Tree.encode(n)
    }
    static func decodeExtents(_ bytes: [UInt8]) throws -> [Node.Extent] {
        try Tree.decodeContent(bytes, what: "file cache")
    }
    /// varint count, then per attribute its length-prefixed name and value.
    static func encodeXattrs(_ xattrs: [Node.Xattr]) -> [UInt8] {
        var w = ByteWriter(capacity: 1 + xattrs.reduce(0) { $0 + $1.name.count + $1.value.count + 4 })
        w.varint(UInt64(xattrs.count))
        for x in xattrs { w.lengthPrefixed(x.name); w.lengthPrefixed(x.value) }
        return w.bytes
    }
    /// 28 bytes per extent: nonce, tag.
    static func encodeFingerprints(_ fingerprints: [ExtentFingerprint]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(fingerprints.count * (ExtentFingerprint.nonceLength + ExtentFingerprint.tagLength))
        for f in fingerprints { out += f.nonce; out += f.tag }
        return out
    }
    /// nil unless there is exactly one fingerprint per extent and every extent is a chunk.
    static func decodeFingerprints(_ bytes: [UInt8], extents: [Node.Extent]) -> [ExtentFingerprint]? {
        let n = ExtentFingerprint.nonceLength, t = ExtentFingerprint.tagLength
        guard bytes.count == extents.count * (n + t),
              extents.allSatisfy({ if case .chunk = $0 { return true } else { return false } }) else { return nil }
        return stride(from: 0, to: bytes.count, by: n + t).map {
            ExtentFingerprint(nonce: Array(bytes[$0..<($0 + n)]), tag: Array(bytes[($0 + n)..<($0 + n + t)]))
        }
    }
    static func decodeXattrs(_ bytes: [UInt8]) throws -> [Node.Xattr] {
        var r = ByteReader(bytes, what: "file cache")
        let count = try r.int(max: r.remaining)
        var out: [Node.Xattr] = []
        out.reserveCapacity(count)
        for _ in 0..<count { out.append(Node.Xattr(name: try r.lengthPrefixed(), value: try r.lengthPrefixed())) }
        guard r.isAtEnd else { throw StoreError(.corrupt, "file cache: trailing bytes after the attributes") }
        return out
    }
}
