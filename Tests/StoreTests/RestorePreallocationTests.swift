import Glibc
import XCTest
@testable import Store

/// Large files without holes get their blocks reserved before their data is written
/// (fallocate); sparse and small files do not, and holes stay holes.
final class RestorePreallocationTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let mebibyte = 1 << 20

    override func setUp() { dir = StoreTestDirectory("coffer-prealloc") }
    override func tearDown() { dir.remove() }

    func testPreallocateReservesBlocksAndKeepsTheSize() throws {
        let path = dir.appending("f")
        let fh = try PosixFileHandle.create(path, permissions: 0o600)
        XCTAssertTrue(fh.preallocate(Int64(3 * mebibyte)))
        var status = try fh.status()
        XCTAssertEqual(status.size, 0, "a restore that stops early leaves a short file, not zeros")
        XCTAssertGreaterThanOrEqual(status.blocks * 512, Int64(3 * mebibyte), "blocks reserved")
        // A write sets the size as usual; the part not written reads as zeros.
        let data = [UInt8](repeating: 0x5A, count: 4096)
        try data.withUnsafeBytes { try fh.pwrite($0, at: Int64(mebibyte)) }
        status = try fh.status()
        XCTAssertEqual(status.size, Int64(mebibyte + 4096))
        XCTAssertGreaterThanOrEqual(status.blocks * 512, Int64(3 * mebibyte))
        let reader = try PosixFileHandle.openForReading(path)
        XCTAssertEqual(try reader.readExactly(count: 4096, at: Int64(mebibyte)), data)
        XCTAssertEqual(try reader.readExactly(count: 16, at: 0), [UInt8](repeating: 0, count: 16))
        XCTAssertFalse(fh.preallocate(0))
        fh.close()
        XCTAssertFalse(fh.preallocate(Int64(mebibyte)), "closed handle")
    }

    func testRestorePreallocatesLargeDenseFilesOnlyAndKeepsHoles() throws {
        let src = dir.appending("src")
        XCTAssertEqual(src.withCString { mkdir($0, 0o755) }, 0)
        let dense = storeTestBytes(count: 3 * mebibyte + 123, seed: 11)
        storeTestWriteFile(src.appending("dense"), dense)
        let small = storeTestBytes(count: 100_000, seed: 12)
        storeTestWriteFile(src.appending("small"), small)
        // 4 MiB with data only in its second MiB: holes before and after.
        let island = storeTestBytes(count: mebibyte, seed: 13)
        let sparse = try PosixFileHandle.create(src.appending("sparse"), permissions: 0o644)
        try sparse.truncate(Int64(4 * mebibyte))
        try island.withUnsafeBytes { try sparse.pwrite($0, at: Int64(mebibyte)) }
        sparse.close()

        let backend = LocalBackend(path: dir.appending("repo"))
        let passphrase = Array("prealloc".utf8)
        _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        let repo = try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending("cache"))
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()

        let target = dir.appending("restore")
        let summary = try Restorer(repository: repo, options: .init(target: target)).run(snapshot: try repo.findSnapshot(result.snapshotID))
        XCTAssertEqual(summary.errors, [])
        XCTAssertEqual(summary.preallocatedBytes, Int64(dense.count), "only the large file without holes")

        let restored = target.appending(src.description.dropFirst().description)
        XCTAssertEqual(storeTestReadFile(restored.appending("dense")), dense)
        XCTAssertEqual(storeTestReadFile(restored.appending("small")), small)
        let reader = try PosixFileHandle.openForReading(restored.appending("sparse"))
        let status = try reader.status()
        XCTAssertEqual(status.size, Int64(4 * mebibyte))
        XCTAssertLessThan(status.blocks * 512, Int64(2 * mebibyte), "holes stay holes")
        XCTAssertEqual(try reader.readExactly(count: mebibyte, at: Int64(mebibyte)), island)
        XCTAssertEqual(try reader.readExactly(count: 64, at: 0), [UInt8](repeating: 0, count: 64))
    }
}
