import Glibc
import XCTest
@testable import Store

/// Large changed files keep the extents whose bytes are still in place (fingerprints in the file
/// cache, docs/FORMAT.md §11), and end up with exactly the extents a full re-chunk gives.
final class ExtentReuseTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("reuse test".utf8)
    private var source: RawPath { dir.appending("src") }
    private var file: RawPath { source.appending("big.img") }

    override func setUp() {
        dir = StoreTestDirectory("coffer-reuse")
        XCTAssertEqual(source.withCString { mkdir($0, 0o755) }, 0)
    }
    override func tearDown() { dir.remove() }

    private func open(cache: String = "cache") throws -> Repository {
        let backend = LocalBackend(path: dir.appending("repo"))
        if (try? Posix.lstat(dir.appending("repo"))) == nil {
            _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        }
        return try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending(cache))
    }

    /// Backs up the source and returns the file's extents in the new snapshot.
    private func backup(_ repo: Repository) throws -> [Node.Extent] {
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [source], host: "h")).run()
        XCTAssertFalse(result.snapshot.partial, "\(result.summary.errors)")
        var tree = try repo.loadTree(try XCTUnwrap(result.snapshot.treeID))
        for c in source.components { tree = try repo.loadTree(try XCTUnwrap(tree.nodes.first { $0.name == c }?.subtree)) }
        return try XCTUnwrap(tree.nodes.first { $0.name == Array("big.img".utf8) }).content
    }

    /// The extents a backup without any file-cache row (a new catalog) gives for the file now.
    private func fullRechunk() throws -> [Node.Extent] {
        let fresh = "cache-\(UInt64.random(in: 0..<UInt64.max))"
        return try backup(try open(cache: fresh))
    }

    private func row(_ repo: Repository) throws -> FileCacheEntry {
        try XCTUnwrap(try repo.catalog.fileCache(directory: source.bytes)[Array("big.img".utf8)])
    }

    private func overwrite(at offset: Int, _ bytes: [UInt8]) {
        let fd = file.withCString { Glibc.open($0, O_WRONLY) }
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }, bytes.count)
        close(fd)
    }

    private func restoredBytes(_ repo: Repository) throws -> [UInt8]? {
        let target = dir.appending("restore-\(UInt64.random(in: 0..<UInt64.max))")
        let summary = try Restorer(repository: repo, options: .init(target: target)).run(snapshot: try repo.findSnapshot("latest"))
        XCTAssertEqual(summary.errors, [])
        return storeTestReadFile(target.appending(String(file.description.dropFirst())))
    }

    func testInPlaceChangesKeepTheOtherExtentsAndMatchAFullRechunk() throws {
        var data = storeTestBytes(count: 20 << 20, seed: 42)
        storeTestWriteFile(file, data)
        let repo = try open()
        let first = try backup(repo)
        XCTAssertGreaterThan(first.count, 10)
        XCTAssertEqual(try row(repo).fingerprints?.count, first.count, "a large file records one fingerprint per extent")

        // Three 64 KiB regions overwritten in place, as a database or VM image changes.
        for offset in [1 << 20, 9 << 20, (20 << 20) - 70_000] {
            let patch = storeTestBytes(count: 65_536, seed: UInt64(offset))
            overwrite(at: offset, patch)
            data.replaceSubrange(offset..<(offset + patch.count), with: patch)
        }
        let second = try backup(repo)
        XCTAssertEqual(second, try fullRechunk(), "kept extents are exactly what chunking would cut")
        let kept = Set(first.compactMap { $0.data?.id }).intersection(second.compactMap { $0.data?.id })
        XCTAssertGreaterThan(kept.count, first.count / 2, "most extents are unchanged")
        XCTAssertLessThan(kept.count, first.count, "the changed ones are new")
        XCTAssertEqual(try restoredBytes(repo), data)
        XCTAssertEqual(try row(repo).fingerprints?.count, second.count)
        XCTAssertEqual(try Checker(repository: repo).run(readData: true).errors, [])
    }

    func testAMatchingFingerprintIsWhatKeepsAnExtent() throws {
        let data = storeTestBytes(count: 8 << 20, seed: 7)
        storeTestWriteFile(file, data)
        let repo = try open()
        let first = try backup(repo)
        // Change the first extent's bytes, and (behind the backup's back) give its row the
        // fingerprint of the new bytes: the backup then keeps the old chunk without reading it
        // further. (With the true fingerprint it would store a new one: next test.)
        let patch = [UInt8](repeating: 0xab, count: 1000)
        overwrite(at: 100, patch)
        var changed = data
        changed.replaceSubrange(100..<1100, with: patch)
        var r = try row(repo)
        let firstLength = Int(first[0].length)
        let forged = changed.withUnsafeBytes {
            repo.writer.fingerprint(UnsafeRawBufferPointer(rebasing: $0[0..<firstLength]), nonce: r.fingerprints![0].nonce)
        }
        r.fingerprints![0] = forged
        try repo.catalog.addIndex(name: nil, file: IndexFile(packs: []), fileCache: [(dir: source.bytes, name: Array("big.img".utf8), entry: r)])
        XCTAssertEqual(try backup(repo).first, first.first, "the old chunk is kept: the fingerprint is trusted")
    }

    func testGrowingShrinkingAndShiftedFilesMatchAFullRechunk() throws {
        var data = storeTestBytes(count: 10 << 20, seed: 9)
        storeTestWriteFile(file, data)
        let repo = try open()
        _ = try backup(repo)

        data += storeTestBytes(count: 3 << 20, seed: 10)            // appended: the old last extent no longer ends the file
        storeTestWriteFile(file, data)
        XCTAssertEqual(try backup(repo), try fullRechunk(), "grown")

        data.removeLast(5 << 20)                                     // truncated in the middle of an extent
        XCTAssertEqual(file.withCString { truncate($0, off_t(data.count)) }, 0)
        XCTAssertEqual(try backup(repo), try fullRechunk(), "shrunk")

        data.insert(contentsOf: storeTestBytes(count: 777, seed: 11), at: 4096)   // later extents shift
        storeTestWriteFile(file, data)
        XCTAssertEqual(try backup(repo), try fullRechunk(), "shifted")
        XCTAssertEqual(try restoredBytes(repo), data)
    }

    func testAFileBelowTheThresholdRecordsNoFingerprints() throws {
        storeTestWriteFile(file, storeTestBytes(count: Int(Archiver.fingerprintMinSize) - 1, seed: 3))
        let repo = try open()
        _ = try backup(repo)
        XCTAssertNil(try row(repo).fingerprints)
    }
}
