import Glibc
import XCTest
@testable import Store

/// The backup's read-ahead of source directories (SourcePrefetcher) and the file-cache rows'
/// extended attributes that let an unchanged file skip its llistxattr.
final class SourcePrefetcherTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("prefetch test".utf8)

    override func setUp() { dir = StoreTestDirectory("coffer-prefetch") }
    override func tearDown() { dir.remove() }

    private func mkdirs(_ paths: [RawPath]) {
        for p in paths { XCTAssertEqual(p.withCString { mkdir($0, 0o755) }, 0, "mkdir \(p)") }
    }

    /// src/{a/{x/, f1}, b/, c, skip/{deep/}}
    private func makeSource() -> RawPath {
        let src = dir.appending("src")
        mkdirs([src, src.appending("a"), src.appending("a").appending("x"), src.appending("b"),
                src.appending("skip"), src.appending("skip").appending("deep")])
        storeTestWriteFile(src.appending("a").appending("f1"), Array("one".utf8))
        storeTestWriteFile(src.appending("c"), Array("three".utf8))
        return src
    }

    private func names(_ scan: DirectoryScan?) -> [String] {
        (scan?.entries ?? []).map { String(decoding: $0.name, as: UTF8.self) }
    }

    func testScansArriveInWalkOrderThroughAOneEntryWindow() throws {
        let src = makeSource()
        // A window of one entry: the reader must wait for every take, and still deliver in order.
        let p = SourcePrefetcher(paths: [src], excludes: ["*/skip"], oneFileSystem: false, catalog: nil, maxEntries: 1)
        p.start()
        let top = p.take(src)
        XCTAssertEqual(names(top), ["a", "b", "c"], "excluded names are not listed")
        let a = try Posix.lstat(src.appending("a"))   // (its atime moved: the reader has listed it since)
        XCTAssertEqual(top?.entries.first.map { [$0.status.inode, UInt64($0.status.permissions), $0.status.nlink] },
                       [a.inode, UInt64(a.permissions), a.nlink])
        XCTAssertEqual(top?.entries.first?.status.kind, .directory)
        XCTAssertEqual(names(p.take(src.appending("a"))), ["f1", "x"])
        XCTAssertEqual(names(p.take(src.appending("a").appending("x"))), [])
        XCTAssertEqual(names(p.take(src.appending("b"))), [])
        XCTAssertNil(p.take(src.appending("skip")), "an excluded directory is never read, and nothing follows b")
    }

    func testATakeOutOfStepStopsTheReader() throws {
        let src = makeSource()
        let p = SourcePrefetcher(paths: [src], excludes: [], oneFileSystem: false, catalog: nil)
        p.start()
        XCTAssertNotNil(p.take(src))
        XCTAssertNil(p.take(src.appending("b")), "a is next: b is out of step")
        XCTAssertNil(p.take(src.appending("a")), "after falling out of step the walk reads for itself")
    }

    func testNestedPathsAndAMissingDirectory() throws {
        let src = makeSource()
        let gone = src.appending("a").appending("x")
        let p = SourcePrefetcher(paths: [src.appending("a"), gone.appending("missing")], excludes: [], oneFileSystem: false,
                                 catalog: nil)
        XCTAssertEqual(p.roots, [src.appending("a")], "a path below another selected path is part of it")
        let scan = DirectoryScan.read(gone.appending("missing"), excludes: [], catalog: nil)
        XCTAssertEqual(scan.listingError?.errno, ENOENT)
        XCTAssertEqual(scan.entries.count, 0)
    }

    // MARK: - Attributes recorded in file-cache rows

    private func openRepository() throws -> Repository {
        let backend = LocalBackend(path: dir.appending("repo"))
        if (try? Posix.lstat(dir.appending("repo"))) == nil {
            _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        }
        return try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending("cache"))
    }

    private func backup(_ repo: Repository, _ src: RawPath) throws -> Tree {
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        XCTAssertFalse(result.snapshot.partial, "\(result.summary.errors)")
        var tree = try repo.loadTree(try XCTUnwrap(result.snapshot.treeID))
        for c in src.components {
            tree = try repo.loadTree(try XCTUnwrap(tree.nodes.first { $0.name == c }?.subtree))
        }
        return tree
    }

    private func xattrs(_ tree: Tree, _ name: String) -> [String: String] {
        var out: [String: String] = [:]
        for x in tree.nodes.first(where: { $0.name == Array(name.utf8) })?.xattrs ?? [] {
            out[String(decoding: x.name, as: UTF8.self)] = String(decoding: x.value, as: UTF8.self)
        }
        return out
    }

    /// Sets an attribute and waits until the file's ctime shows it (a coarse clock can leave
    /// ctime unchanged for a moment; the file cache would then rightly call the file unchanged).
    private func setAttribute(_ file: RawPath, _ name: String, _ value: String, ctimeAfter before: Timespec) throws {
        let deadline = Monotonic.now() + 10
        repeat {
            try Posix.setExtendedAttribute(file, name: Array(name.utf8), value: Array(value.utf8))
            if try Posix.lstat(file).ctime != before { return }
            usleep(2_000)
        } while Monotonic.now() < deadline
        XCTFail("ctime of \(file) did not change")
    }

    /// src/f with one user attribute.
    private func fileWithAttribute(_ name: String, _ value: String) throws -> (src: RawPath, file: RawPath) {
        let src = dir.appending("src")
        mkdirs([src])
        let file = src.appending("f")
        storeTestWriteFile(file, Array("content".utf8))
        try Posix.setExtendedAttribute(file, name: Array(name.utf8), value: Array(value.utf8))
        return (src, file)
    }

    func testUnchangedFileTakesItsAttributesFromTheCatalogAndAChangedOneIsRead() throws {
        let (src, file) = try fileWithAttribute("user.note", "first")
        let repo = try openRepository()
        XCTAssertEqual(xattrs(try backup(repo, src), "f"), ["user.note": "first"])
        let row = try XCTUnwrap(try repo.catalog.fileCache(directory: src.bytes)[[0x66]])
        XCTAssertEqual(row.xattrs, [Node.Xattr(name: Array("user.note".utf8), value: Array("first".utf8))])

        // The row is what an unchanged file's attributes come from: a row edited behind the
        // backup's back shows up in the next snapshot (so no llistxattr ran).
        var edited = row
        edited.xattrs = [Node.Xattr(name: Array("user.note".utf8), value: Array("from-row".utf8))]
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [(dir: src.bytes, name: [0x66], entry: edited)])
        XCTAssertEqual(xattrs(try backup(repo, src), "f"), ["user.note": "from-row"])

        // Changing an attribute changes ctime: the file is no longer unchanged and is read again.
        try setAttribute(file, "user.note", "second", ctimeAfter: try Posix.lstat(file).ctime)
        XCTAssertEqual(xattrs(try backup(repo, src), "f"), ["user.note": "second"])
        XCTAssertEqual(try repo.catalog.fileCache(directory: src.bytes)[[0x66]]?.xattrs?.first?.value, Array("second".utf8))
    }

    func testRowWithoutRecordedAttributesIsCompletedOnce() throws {
        let (src, _) = try fileWithAttribute("user.k", "v")
        let repo = try openRepository()
        _ = try backup(repo, src)
        // As a catalog from before attributes were recorded would have it.
        var row = try XCTUnwrap(try repo.catalog.fileCache(directory: src.bytes)[[0x66]])
        row.xattrs = nil
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [(dir: src.bytes, name: [0x66], entry: row)])
        XCTAssertEqual(xattrs(try backup(repo, src), "f"), ["user.k": "v"], "read from the file when the row has none")
        XCTAssertEqual(try repo.catalog.fileCache(directory: src.bytes)[[0x66]]?.xattrs,
                       [Node.Xattr(name: Array("user.k".utf8), value: Array("v".utf8))], "and recorded for next time")
    }
}
