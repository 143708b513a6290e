@testable import Store
import XCTest

/// The local catalog (docs/FORMAT.md §11) on top of a real repository in a temp dir.
final class CatalogTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("catalog test".utf8)

    override func setUp() { dir = StoreTestDirectory("coffer-catalog") }
    override func tearDown() { dir.remove() }

    private var cache: RawPath { dir.appending("cache") }

    private func openNewRepository(_ name: String = "repo") throws -> Repository {
        let backend = LocalBackend(path: dir.appending(name))
        _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        return try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: cache)
    }

    private func index(pack: UInt8, blobs: [UInt8], type: BlobType = .data) -> IndexFile {
        var offset = 0
        var entries: [PackEntry] = []
        for (i, b) in blobs.enumerated() {
            let len = 100 + i
            entries.append(PackEntry(type: type, id: storeTestBlobID(b), offset: offset, length: len, rawLength: 1000 + i))
            offset += len
        }
        return IndexFile(packs: [IndexFile.Pack(id: Hex.encode([UInt8](repeating: pack, count: 32)), entries: entries)])
    }

    private func indexNames(_ repo: Repository) throws -> Set<String> {
        Set(try repo.backend.list(.index).map(\.name.id))
    }

    // MARK: - Lookups

    func testAddIndexAndLookUpBlobs() throws {
        let repo = try openNewRepository()
        XCTAssertEqual(repo.catalog.blobCount, 0)
        let file = IndexFile(packs: index(pack: 0xaa, blobs: [1, 2, 3]).packs + index(pack: 0xbb, blobs: [4], type: .tree).packs)
        try repo.catalog.addIndex(name: nil, file: file, fileCache: [])
        XCTAssertEqual(repo.catalog.blobCount, 4)
        let aa = String(repeating: "aa", count: 32), bb = String(repeating: "bb", count: 32)
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(1)),
                       BlobLocation(type: .data, pack: aa, offset: 0, length: 100, rawLength: 1000))
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(3)),
                       BlobLocation(type: .data, pack: aa, offset: 201, length: 102, rawLength: 1002))
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(4)),
                       BlobLocation(type: .tree, pack: bb, offset: 0, length: 100, rawLength: 1000))
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(9)))
        XCTAssertTrue(try repo.catalog.contains(storeTestBlobID(2)))
        XCTAssertFalse(try repo.catalog.contains(storeTestBlobID(9)))
        let packs = try repo.catalog.packs()
        XCTAssertEqual(packs.map(\.id), [aa, bb])
        XCTAssertEqual(packs.map(\.blobs), [3, 1])
        XCTAssertEqual(packs.map(\.end), [303, 100])
        // A blob stored in two packs: the first location is kept, the blob is counted once.
        try repo.catalog.addIndex(name: nil, file: index(pack: 0xcc, blobs: [1]), fileCache: [])
        XCTAssertEqual(repo.catalog.blobCount, 4)
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(1))?.pack, aa)
    }

    func testLookupsAfterAClearNameTheNewPacks() throws {
        // Pack row ids start again after a clear: a location must never name a pack remembered
        // from before it.
        let repo = try openNewRepository()
        try repo.catalog.addIndex(name: nil, file: index(pack: 0xaa, blobs: [1]), fileCache: [])
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(1))?.pack, String(repeating: "aa", count: 32))
        try repo.catalog.clear()
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(1)))
        try repo.catalog.addIndex(name: nil, file: index(pack: 0xdd, blobs: [1, 5]), fileCache: [])
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(1))?.pack, String(repeating: "dd", count: 32))
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(5))?.pack, String(repeating: "dd", count: 32))
    }

    func testCatalogPersistsAcrossOpens() throws {
        let repo = try openNewRepository()
        let sealer = try Sealer(writer: repo.writer)
        _ = try repo.saveIndex(index(pack: 0x10, blobs: [1, 2]), sealer: sealer, fileCache: [])
        let again = try Repository.open(backend: repo.backend, passphrase: passphrase, cacheDirectory: cache)
        XCTAssertEqual(again.catalog.blobCount, 2)
        XCTAssertNotNil(try again.catalog.lookup(storeTestBlobID(2)))
        XCTAssertFalse(try again.catalog.sync(backend: again.backend, opener: again.opener).rebuilt, "nothing vanished")
    }

    // MARK: - Sync

    func testSyncPicksUpIndexFilesWrittenByOthers() throws {
        let repo = try openNewRepository()
        // Another client writes an index file directly to the backend.
        let sealer = try Sealer(writer: repo.writer)
        let env = try sealer.seal(index(pack: 0x20, blobs: [5, 6]).encoded(), context: EnvelopeContext.index)
        try repo.backend.put(try ObjectName(.index, Hex.encode(SHA256Digest.of(env))), env)
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(5)))
        XCTAssertFalse(try repo.catalog.sync(backend: repo.backend, opener: repo.opener).rebuilt)
        XCTAssertEqual(try repo.catalog.lookup(storeTestBlobID(5))?.pack, String(repeating: "20", count: 32))
        XCTAssertEqual(repo.catalog.blobCount, 2)
    }

    func testSyncSkipsAnIndexUnderTheWrongContextWithAWarning() throws {
        let repo = try openNewRepository()
        let sealer = try Sealer(writer: repo.writer)
        let env = try sealer.seal(index(pack: 0x20, blobs: [5]).encoded(), context: EnvelopeContext.snapshot)
        let name = Hex.encode(SHA256Digest.of(env))
        try repo.backend.put(try ObjectName(.index, name), env)
        let result = try repo.catalog.sync(backend: repo.backend, opener: repo.opener)
        XCTAssertEqual(result.warnings.count, 1)
        XCTAssertTrue(result.warnings[0].contains(name), result.warnings[0])
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(5)), "a damaged index is not taken in")
        // ...and not recorded as ingested: the next sync looks at it again.
        XCTAssertEqual(try repo.catalog.sync(backend: repo.backend, opener: repo.opener).warnings.count, 1)
    }

    func testVanishedIndexFileTriggersARebuild() throws {
        let repo = try openNewRepository()
        let sealer = try Sealer(writer: repo.writer)
        let row: (dir: [UInt8], name: [UInt8], entry: FileCacheEntry) =
            (Array("/home".utf8), Array("f".utf8),
             FileCacheEntry(size: 3, mtimeNanos: 1, ctimeNanos: 2, inode: 3, content: [.chunk(storeTestBlobID(1), length: 3)]))
        _ = try repo.saveIndex(index(pack: 0x31, blobs: [1, 2]), sealer: sealer, fileCache: [row])
        let first = try indexNames(repo)
        _ = try repo.saveIndex(index(pack: 0x32, blobs: [3, 4]), sealer: sealer, fileCache: [])
        let second = try indexNames(repo).subtracting(first)
        XCTAssertEqual(first.count, 1)
        XCTAssertEqual(second.count, 1)
        XCTAssertEqual(repo.catalog.blobCount, 4)
        XCTAssertEqual(try repo.catalog.fileCache(directory: Array("/home".utf8)).count, 1)
        XCTAssertFalse(try repo.catalog.sync(backend: repo.backend, opener: repo.opener).rebuilt)

        // prune (or another repository at this path) removes an index file the catalog has ingested.
        try repo.backend.delete(try ObjectName(.index, first.first!))
        XCTAssertTrue(try repo.catalog.sync(backend: repo.backend, opener: repo.opener).rebuilt, "rebuilt from scratch")
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(1)))
        XCTAssertNil(try repo.catalog.lookup(storeTestBlobID(2)))
        XCTAssertNotNil(try repo.catalog.lookup(storeTestBlobID(3)))
        XCTAssertNotNil(try repo.catalog.lookup(storeTestBlobID(4)))
        XCTAssertEqual(repo.catalog.blobCount, 2)
        XCTAssertEqual(try repo.catalog.packs().map(\.id), [String(repeating: "32", count: 32)])
        XCTAssertEqual(try repo.catalog.fileCache(directory: Array("/home".utf8)).count, 0,
                       "the file cache may point at vanished chunks: dropped")
        XCTAssertFalse(try repo.catalog.sync(backend: repo.backend, opener: repo.opener).rebuilt, "stable afterwards")

        // Re-opening sees the same state.
        let again = try Repository.open(backend: repo.backend, passphrase: passphrase, cacheDirectory: cache)
        XCTAssertNil(try again.catalog.lookup(storeTestBlobID(1)))
        XCTAssertNotNil(try again.catalog.lookup(storeTestBlobID(3)))
    }

    func testSnapshotsAreSyncedAndForgotten() throws {
        let repo = try openNewRepository()
        let sealer = try Sealer(writer: repo.writer)
        let snap = Snapshot(time: "2026-11-23T02:00:00.123456789Z", host: "web1", username: "root", tags: ["nightly"],
                            paths: ["/etc"], tree: String(repeating: "ab", count: 32), partial: false, errorCount: 0,
                            program: "coffer test", summary: nil)
        let id = try repo.saveSnapshot(snap, sealer: sealer)
        XCTAssertEqual(try repo.snapshots().map(\.id), [id])
        let other = try Repository.open(backend: repo.backend, passphrase: passphrase, cacheDirectory: dir.appending("cache2"))
        XCTAssertEqual(try other.snapshots().map(\.id), [id], "a fresh catalog reads snapshots from the repository")
        XCTAssertEqual(try other.snapshots().first?.snapshot.host, "web1")
        XCTAssertEqual(try other.findSnapshot("latest").id, id)
        try repo.backend.delete(try ObjectName(.snapshots, id))
        try other.syncCatalog()
        XCTAssertEqual(try other.snapshots().count, 0)
    }

    // MARK: - File cache

    /// A backup's final flush: file-cache rows and the index are recorded in one transaction;
    /// the index file is stored only after `beforeStoring` (where the backup waits for its
    /// packs to be durable), and the catalog commits only after the index file is stored. A
    /// failure before that leaves neither the index file nor any catalog row.
    func testSaveIndexStoresTheIndexAfterItsPacksAndCommitsLast() throws {
        let repo = try openNewRepository()
        let sealer = try Sealer(writer: repo.writer)
        let dirA: [UInt8] = Array("/srv/a".utf8)
        let row = FileCacheEntry(size: 3, mtimeNanos: 3, ctimeNanos: 3, inode: 3, content: [.chunk(storeTestBlobID(5), length: 3)])
        struct PublicationFailed: Error {}

        // The packs never become durable: nothing is stored or recorded.
        XCTAssertThrowsError(try repo.saveIndex(fileCache: [(dir: dirA, name: Array("f".utf8), entry: row)], sealer: sealer,
                                                packs: { self.index(pack: 0xaa, blobs: [5]) },
                                                beforeStoring: { throw PublicationFailed() })) { XCTAssertTrue($0 is PublicationFailed) }
        XCTAssertEqual(try indexNames(repo), [])
        XCTAssertFalse(try repo.catalog.contains(storeTestBlobID(5)))
        XCTAssertEqual(try repo.catalog.fileCache(directory: dirA), [:], "rows of a failed flush are rolled back")

        var steps: [String] = []
        let size = try repo.saveIndex(fileCache: [(dir: dirA, name: Array("f".utf8), entry: row)], sealer: sealer,
                                      packs: { steps.append("packs"); return self.index(pack: 0xaa, blobs: [5]) },
                                      beforeStoring: {
                                          steps.append("durable")
                                          XCTAssertEqual(try self.indexNames(repo), [], "the index file is stored after its packs are durable")
                                      })
        XCTAssertEqual(steps, ["packs", "durable"])
        XCTAssertGreaterThan(size, 0)
        XCTAssertEqual(try indexNames(repo).count, 1)
        XCTAssertTrue(try repo.catalog.contains(storeTestBlobID(5)))
        XCTAssertEqual(try repo.catalog.fileCache(directory: dirA), [Array("f".utf8): row])

        // No new packs: the rows are recorded, no index file is written.
        XCTAssertEqual(try repo.saveIndex(fileCache: [(dir: dirA, name: Array("g".utf8), entry: row)], sealer: sealer,
                                          packs: { nil }, beforeStoring: {}), 0)
        XCTAssertEqual(try indexNames(repo).count, 1)
        XCTAssertEqual(try repo.catalog.fileCache(directory: dirA).count, 2)
    }

    func testFileCacheRowsRoundTrip() throws {
        let repo = try openNewRepository()
        let dirA: [UInt8] = Array("/home/ann".utf8) + [0xff]   // raw bytes, not UTF-8
        let dirB: [UInt8] = Array("/etc".utf8)
        let e1 = FileCacheEntry(size: 10 << 30, mtimeNanos: 1_795_140_000_123_456_789, ctimeNanos: -1_000_000_001,
                                inode: UInt64.max, content: [.chunk(storeTestBlobID(7), length: 524_288), .hole(length: 1 << 40),
                                                              .chunk(storeTestBlobID(8), length: 1)])
        let e2 = FileCacheEntry(size: 0, mtimeNanos: 0, ctimeNanos: 0, inode: 0, content: [])
        let e3 = FileCacheEntry(size: 5, mtimeNanos: 5, ctimeNanos: 5, inode: 5, content: [.hole(length: 5)])
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [
            (dir: dirA, name: [0x61, 0x00, 0xfe], entry: e1),
            (dir: dirA, name: Array("empty".utf8), entry: e2),
            (dir: dirB, name: Array("passwd".utf8), entry: e3),
        ])
        let a = try repo.catalog.fileCache(directory: dirA)
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(a[[0x61, 0x00, 0xfe]], e1)
        XCTAssertEqual(a[Array("empty".utf8)], e2)
        XCTAssertEqual(try repo.catalog.fileCache(directory: dirB), [Array("passwd".utf8): e3])
        XCTAssertEqual(try repo.catalog.fileCache(directory: Array("/home/ann".utf8)), [:], "exact directory match")
        // A later row for the same (dir, name) replaces the old one.
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [(dir: dirB, name: Array("passwd".utf8), entry: e2)])
        XCTAssertEqual(try repo.catalog.fileCache(directory: dirB), [Array("passwd".utf8): e2])
        XCTAssertEqual(try Catalog.decodeExtents(Catalog.encodeExtents(e1.content)), e1.content)
    }

    func testFileCacheRowsKeepExtendedAttributes() throws {
        let repo = try openNewRepository()
        let binary: [UInt8] = [0x00, 0xff, 0x0a, 0x00]
        let recorded = FileCacheEntry(size: 1, mtimeNanos: 2, ctimeNanos: 3, inode: 4, content: [.hole(length: 1)],
                                      xattrs: [Node.Xattr(name: Array("user.a".utf8), value: binary),
                                               Node.Xattr(name: Array("user.empty".utf8), value: [])])
        let none = FileCacheEntry(size: 1, mtimeNanos: 2, ctimeNanos: 3, inode: 5, content: [], xattrs: [])
        let unknown = FileCacheEntry(size: 1, mtimeNanos: 2, ctimeNanos: 3, inode: 6, content: [], xattrs: nil)
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [
            (dir: [0x2f], name: [0x61], entry: recorded), (dir: [0x2f], name: [0x62], entry: none),
            (dir: [0x2f], name: [0x63], entry: unknown),
        ])
        let rows = try repo.catalog.fileCache(directory: [0x2f])
        XCTAssertEqual(rows[[0x61]], recorded)
        XCTAssertEqual(rows[[0x62]]?.xattrs, [], "no attributes is recorded, not unknown")
        XCTAssertNil(try XCTUnwrap(rows[[0x63]]).xattrs, "unknown stays unknown")
        XCTAssertThrowsError(try Catalog.decodeXattrs(Catalog.encodeXattrs([Node.Xattr(name: [0x61], value: [0x62])]) + [0x00]))
    }

    func testCatalogFromBeforeAttributeColumnIsUpgradedInPlace() throws {
        let path = dir.appending("old.sqlite").description
        let id = String(repeating: "c3", count: 32)
        do {
            // The schema-2 layout as it was before file-cache rows recorded attributes.
            let db = try SQLiteDatabase(path: path)
            try db.execute("""
                CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE filecache(dir BLOB NOT NULL, name BLOB NOT NULL, size INTEGER, mtime INTEGER,
                    ctime INTEGER, inode INTEGER, content BLOB, PRIMARY KEY(dir, name)) WITHOUT ROWID;
                INSERT INTO meta(key, value) VALUES('schema', '\(Catalog.schemaVersion)'), ('repository', '\(id)');
                """)
            let ins = try db.prepare("INSERT INTO filecache(dir, name, size, mtime, ctime, inode, content) VALUES(?,?,?,?,?,?,?)")
            try ins.forEachRow([.blob([0x2f]), .blob([0x61]), .integer(7), .integer(8), .integer(9), .integer(10),
                                .blob(Catalog.encodeExtents([.hole(length: 7)]))]) { _ in }
        }
        let catalog = try Catalog(path: path, repositoryID: id)
        let row = try XCTUnwrap(try catalog.fileCache(directory: [0x2f])[[0x61]], "the old row survives the upgrade")
        XCTAssertEqual(row, FileCacheEntry(size: 7, mtimeNanos: 8, ctimeNanos: 9, inode: 10, content: [.hole(length: 7)], xattrs: nil))
        try catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [
            (dir: [0x2f], name: [0x62], entry: FileCacheEntry(size: 1, mtimeNanos: 1, ctimeNanos: 1, inode: 1, content: [], xattrs: [])),
        ])
        XCTAssertEqual(try catalog.fileCache(directory: [0x2f])[[0x62]]?.xattrs, [])
        _ = try Catalog(path: path, repositoryID: id)   // opening an upgraded catalog again adds nothing
    }

    // MARK: - Catalog of another repository

    func testCatalogOfAnotherRepositoryIsWipedOnOpen() throws {
        let path = dir.appending("standalone.sqlite").description
        let idA = String(repeating: "a1", count: 32), idB = String(repeating: "b2", count: 32)
        do {
            let c = try Catalog(path: path, repositoryID: idA)
            try c.addIndex(name: "0123abcd", file: index(pack: 1, blobs: [1, 2]), fileCache: [
                (dir: [0x2f], name: [0x61], entry: FileCacheEntry(size: 1, mtimeNanos: 1, ctimeNanos: 1, inode: 1, content: [])),
            ])
            try c.addSnapshot(id: "feedbeef", json: Array("{}".utf8), envelope: [])
            XCTAssertEqual(c.blobCount, 2)
        }
        do {
            let same = try Catalog(path: path, repositoryID: idA)
            XCTAssertEqual(same.blobCount, 2, "the same repository keeps its catalog")
            XCTAssertEqual(try same.fileCache(directory: [0x2f]).count, 1)
        }
        let other = try Catalog(path: path, repositoryID: idB)
        XCTAssertEqual(other.blobCount, 0)
        XCTAssertNil(try other.lookup(storeTestBlobID(1)))
        XCTAssertEqual(try other.fileCache(directory: [0x2f]).count, 0)
        XCTAssertEqual(try other.packs().count, 0)
        let known = try other.db.prepare("SELECT COUNT(*) FROM index_files")
        XCTAssertTrue(try known.step())
        XCTAssertEqual(known.int64(0), 0)
        let snaps = try other.db.prepare("SELECT COUNT(*) FROM snapshots")
        XCTAssertTrue(try snaps.step())
        XCTAssertEqual(snaps.int64(0), 0)
    }

    func testRepositoryOpenWipesACatalogLeftByAnotherRepository() throws {
        let repoB = try openNewRepository("b")
        let idB = repoB.config.id
        let catalogPath = cache.appending(idB).appending("catalog.sqlite").description
        XCTAssertEqual(repoB.catalog.path, catalogPath)
        // Pretend the cache file was written for another repository (e.g. copied / id collision in a shared cache).
        try repoB.catalog.db.execute("UPDATE meta SET value = '\(String(repeating: "0", count: 64))' WHERE key = 'repository'")
        try repoB.catalog.addIndex(name: nil, file: index(pack: 0x77, blobs: [1]), fileCache: [])
        XCTAssertEqual(repoB.catalog.blobCount, 1)
        let reopened = try Repository.open(backend: repoB.backend, passphrase: passphrase, cacheDirectory: cache)
        XCTAssertEqual(reopened.catalog.blobCount, 0, "rows of the other repository are gone")
        XCTAssertNil(try reopened.catalog.lookup(storeTestBlobID(1)))
    }
}
