import Glibc
@testable import Store
import XCTest

/// LocalBackend against the Backend contract (in the style of restic's backend test suite).
final class BackendTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private var backend: LocalBackend!

    override func setUpWithError() throws {
        dir = StoreTestDirectory("coffer-backend")
        backend = LocalBackend(path: dir.appending("repo"))
        try backend.create()
    }

    override func tearDown() { dir.remove() }

    private func id(_ seed: UInt64) -> String { Hex.encode(storeTestBytes(count: 32, seed: seed)) }

    private func assertNotFound(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected BackendError.notFound", file: file, line: line)
        } catch BackendError.notFound {
        } catch {
            XCTFail("expected BackendError.notFound, got \(error)", file: file, line: line)
        }
    }

    private func mode(_ path: RawPath) throws -> UInt32 { try Posix.lstat(path).permissions & 0o777 }

    // MARK: - create

    func testCreateMakesTheLayout() throws {
        let root = backend.root
        for sub in ["keys", "snapshots", "index", "locks", "data", "tmp"] {
            let st = try Posix.lstat(root.appending(sub))
            XCTAssertEqual(st.kind, .directory, sub)
            XCTAssertEqual(st.permissions & 0o777, 0o700, sub)
        }
        let prefixes = try Posix.readDirectory(root.appending("data"))
        XCTAssertEqual(prefixes.count, 256)
        XCTAssertEqual(prefixes.first, Array("00".utf8))
        XCTAssertEqual(prefixes.last, Array("ff".utf8))
        XCTAssertEqual(try mode(root), 0o700)
    }

    func testCreateAcceptsAnExistingEmptyDirectory() throws {
        let path = dir.appending("empty")
        XCTAssertEqual(path.withCString { mkdir($0, 0o755) }, 0)
        let b = LocalBackend(path: path)
        XCTAssertNoThrow(try b.create())
        XCTAssertEqual(try b.list(.keys), [])
    }

    func testCreateRefusesANonEmptyDirectory() throws {
        let path = dir.appending("full")
        XCTAssertEqual(path.withCString { mkdir($0, 0o755) }, 0)
        storeTestWriteFile(path.appending("precious"), [1, 2, 3])
        assertStoreError(.repositoryExists) { try LocalBackend(path: path).create() }
        XCTAssertEqual(storeTestReadFile(path.appending("precious")), [1, 2, 3], "left alone")
        XCTAssertEqual(try Posix.readDirectory(path), [Array("precious".utf8)])
        // An existing repository is not empty either.
        assertStoreError(.repositoryExists) { try LocalBackend(path: backend.root).create() }
    }

    // MARK: - put / get / stat / list

    func testPutGetStatListForEveryKind() throws {
        for (k, kind) in ObjectKind.allCases.enumerated() {
            let names: [ObjectName]
            if kind == .config {
                names = [ObjectName.config]
            } else {
                names = try (0..<3).map { try ObjectName(kind, id(UInt64(1000 + k * 10 + $0))) }
            }
            var expected: [ObjectInfo] = []
            for (i, name) in names.enumerated() {
                let bytes = storeTestBytes(count: 100 * i + 1, seed: UInt64(i + 1))
                try backend.put(name, bytes)
                XCTAssertEqual(try backend.get(name), bytes, "\(name)")
                XCTAssertEqual(try backend.stat(name), ObjectInfo(name: name, size: Int64(bytes.count)))
                XCTAssertTrue(try backend.exists(name))
                expected.append(ObjectInfo(name: name, size: Int64(bytes.count)))
            }
            XCTAssertEqual(try backend.list(kind), expected.sorted { $0.name.id < $1.name.id }, "list \(kind)")
        }
        // Objects of one kind are not listed under another.
        let idx = try backend.list(.index).map(\.name.id)
        let snaps = try backend.list(.snapshots).map(\.name.id)
        XCTAssertTrue(Set(idx).isDisjoint(with: snaps))
    }

    func testObjectPaths() throws {
        let packID = id(1)
        try backend.put(try ObjectName(.packs, packID), [1])
        try backend.put(try ObjectName(.index, id(2)), [2])
        try backend.put(.config, [3])
        let root = backend.root
        XCTAssertEqual(storeTestReadFile(root.appending("data").appending(String(packID.prefix(2))).appending(packID)), [1])
        XCTAssertEqual(storeTestReadFile(root.appending("index").appending(id(2))), [2])
        XCTAssertEqual(storeTestReadFile(root.appending("config")), [3])
    }

    func testEmptyObject() throws {
        let name = try ObjectName(.locks, id(3))
        try backend.put(name, [])
        XCTAssertEqual(try backend.get(name), [])
        XCTAssertEqual(try backend.stat(name).size, 0)
        XCTAssertEqual(try backend.get(name, range: 0..<0), [])
    }

    func testPutOfAnExistingNameThrowsAndKeepsTheOriginal() throws {
        let name = try ObjectName(.snapshots, id(4))
        try backend.put(name, [1, 2, 3])
        do {
            try backend.put(name, [9, 9, 9, 9])
            XCTFail("second put must throw")
        } catch BackendError.alreadyExists(let n) {
            XCTAssertEqual(n, name)
        }
        XCTAssertEqual(try backend.get(name), [1, 2, 3])
        XCTAssertEqual(try Posix.readDirectory(backend.stagingDirectory), [], "the staged copy is removed")
        do {
            try backend.put(.config, [1])
            try backend.put(.config, [2])
            XCTFail("config is not overwritten either")
        } catch BackendError.alreadyExists {}
        XCTAssertEqual(try backend.get(.config), [1])
    }

    func testGetRangeReturnsExactlyTheRange() throws {
        let name = try ObjectName(.packs, id(5))
        let bytes = storeTestBytes(count: 10_000, seed: 5)
        try backend.put(name, bytes)
        for r in [0..<10_000, 0..<1, 9_999..<10_000, 1234..<5678, 5..<5, 10_000..<10_000] as [Range<Int64>] {
            XCTAssertEqual(try backend.get(name, range: r), Array(bytes[Int(r.lowerBound)..<Int(r.upperBound)]), "\(r)")
        }
    }

    func testGetRangePastTheEndThrows() throws {
        let name = try ObjectName(.packs, id(6))
        try backend.put(name, [UInt8](repeating: 7, count: 100))
        for r in [0..<101, 99..<101, 100..<101, 200..<300] as [Range<Int64>] {
            XCTAssertThrowsError(try backend.get(name, range: r), "\(r)")
        }
    }

    func testMissingObjects() throws {
        let name = try ObjectName(.index, id(7))
        assertNotFound { _ = try self.backend.get(name) }
        assertNotFound { _ = try self.backend.get(name, range: 0..<1) }
        assertNotFound { _ = try self.backend.stat(name) }
        assertNotFound { _ = try self.backend.get(.config) }
        XCTAssertFalse(try backend.exists(name))
        XCTAssertFalse(try backend.exists(try ObjectName(.packs, id(8))))
        XCTAssertEqual(try backend.list(.config), [])
    }

    func testListIsSortedAndSkipsTemporaryAndInvalidNames() throws {
        let ids = (0..<20).map { id(UInt64(100 + $0)) }
        for i in ids { try backend.put(try ObjectName(.index, i), Array(i.utf8)) }
        for i in ids.prefix(10) { try backend.put(try ObjectName(.packs, i), [0]) }
        let root = backend.root
        // Junk a reader must ignore.
        storeTestWriteFile(backend.stagingDirectory.appending(id(999)), [1])                  // a valid id, but in tmp/
        storeTestWriteFile(backend.stagingDirectory.appending("tmp-1-abcdef"), [1])
        storeTestWriteFile(root.appending("index").appending("README"), [1])
        storeTestWriteFile(root.appending("index").appending(id(500).uppercased()), [1])      // not lower-case
        storeTestWriteFile(root.appending("index").appending("abc"), [1])                     // too short
        storeTestWriteFile(root.appending("index").appending(id(501) + "00"), [1])            // too long
        storeTestWriteFile(root.appending("index").appending(id(502) + ".tmp"), [1])
        storeTestWriteFile(root.appending("index").appending([0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x30, 0xff]), [1])  // invalid UTF-8
        XCTAssertEqual(root.appending("index").appending(id(503)).withCString { mkdir($0, 0o700) }, 0)  // a directory
        storeTestWriteFile(root.appending("data").appending("README"), [1])
        storeTestWriteFile(root.appending("data").appending(id(504)), [1])                    // pack outside a prefix dir

        let index = try backend.list(.index)
        XCTAssertEqual(index.map(\.name.id), ids.sorted())
        XCTAssertEqual(index.map(\.size), ids.sorted().map { Int64($0.utf8.count) })
        XCTAssertEqual(try backend.list(.packs).map(\.name.id), ids.prefix(10).sorted())
        for kind in ObjectKind.allCases {
            let listed = try backend.list(kind).map(\.name.id)
            XCTAssertFalse(listed.contains(id(999)), "tmp/ is never listed (\(kind))")
            XCTAssertEqual(listed, listed.sorted())
        }
        // An 8-digit id is the shortest valid one.
        try backend.put(try ObjectName(.locks, "0123abcd"), [1])
        XCTAssertEqual(try backend.list(.locks).map(\.name.id), ["0123abcd"])
    }

    func testDelete() throws {
        let name = try ObjectName(.locks, id(9))
        try backend.put(name, [1])
        try backend.delete(name)
        XCTAssertFalse(try backend.exists(name))
        XCTAssertEqual(try backend.list(.locks), [])
        XCTAssertNoThrow(try backend.delete(name), "deleting a missing object is fine")
        XCTAssertNoThrow(try backend.delete(try ObjectName(.packs, id(10))))
        XCTAssertNoThrow(try backend.delete(try ObjectName(.snapshots, id(11))))
        // The name can be used again after a delete.
        try backend.put(name, [2])
        XCTAssertEqual(try backend.get(name), [2])
    }

    func testFilesAreCreatedWithMode0600() throws {
        let name = try ObjectName(.keys, id(12))
        try backend.put(name, [1, 2, 3])
        XCTAssertEqual(try mode(backend.path(name)), 0o600)
        try backend.put(.config, [1])
        XCTAssertEqual(try mode(backend.path(.config)), 0o600)
        let pack = try ObjectName(.packs, id(13))
        try backend.put(pack, [1])
        XCTAssertEqual(try mode(backend.path(pack)), 0o600)
    }

    func testPutFilePublishesAStagedFile() throws {
        let staged = backend.stagingDirectory.appending(LocalBackend.temporaryName())
        storeTestWriteFile(staged, [4, 5, 6])
        let name = try ObjectName(.packs, id(14))
        try backend.putFile(name, from: staged)
        XCTAssertEqual(try backend.get(name), [4, 5, 6])
        XCTAssertNil(storeTestReadFile(staged), "the staged file is removed")
        XCTAssertFalse(ObjectName.isValid(.packs, LocalBackend.temporaryName()))
        XCTAssertNotEqual(LocalBackend.temporaryName(), LocalBackend.temporaryName())
    }

    // MARK: - ObjectName

    func testObjectNameValidation() throws {
        let bad = ["../x", "ABC", "ABCDEF01", "abcdef0", String(repeating: "a", count: 65), "", "abcdefg1",
                   "abcd/ef01", "..", "abcdef01 ", "config", "abcdef0\u{0}1"]
        for kind in ObjectKind.allCases where kind != .config {
            for s in bad {
                XCTAssertFalse(ObjectName.isValid(kind, s), "\(kind) \(s)")
                assertStoreError(.invalidArgument, "\(kind) \(s)") { try ObjectName(kind, s) }
            }
            for s in ["abcdef01", "01234567", String(repeating: "f", count: 64), String(repeating: "0", count: 33)] {
                XCTAssertTrue(ObjectName.isValid(kind, s), "\(kind) \(s)")
                XCTAssertEqual(try ObjectName(kind, s).id, s)
            }
        }
        XCTAssertTrue(ObjectName.isValid(.config, "config"))
        XCTAssertFalse(ObjectName.isValid(.config, "abcdef01"))
        assertStoreError(.invalidArgument) { try ObjectName(.config, "../config") }
        XCTAssertEqual(ObjectName.config.description, "config")
        XCTAssertEqual(try ObjectName(.packs, "abcdef01").description, "data/abcdef01")
    }
}

/// Leftovers of killed writers in tmp/ are removed only when their process is gone and
/// they have been idle for the minimum age.
final class StagingCleanupTests: XCTestCase {
    func testAbandonedStagingFilesAreRemovedAndLiveOnesKept() throws {
        let dir = RawPath("/tmp/coffer-staging-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let backend = LocalBackend(path: dir)
        try backend.create()
        defer { _ = system("rm -rf '\(dir)'") }
        // A pid that cannot be alive (beyond pid_max) and our own (alive).
        let dead = backend.stagingDirectory.appending("tmp-4194999-aa.pack")
        let deadFresh = backend.stagingDirectory.appending("tmp-4194998-bb.pack")
        let alive = backend.stagingDirectory.appending("tmp-\(getpid())-cc.pack")
        let other = backend.stagingDirectory.appending("unrelated")
        for p in [dead, deadFresh, alive, other] {
            let fh = try Store.FileHandle.create(p, permissions: 0o600)
            fh.close()
        }
        let old = Timespec(seconds: Timestamp.now().seconds - 7200, nanoseconds: 0)
        for p in [dead, alive, other] { try Posix.setTimes(p, atime: old, mtime: old) }
        XCTAssertEqual(backend.removeAbandonedStagingFiles(), 1)
        XCTAssertNil(try? Posix.lstat(dead), "idle file of a dead process is removed")
        XCTAssertNotNil(try? Posix.lstat(deadFresh), "recently modified files are kept")
        XCTAssertNotNil(try? Posix.lstat(alive), "files of a live process are kept")
        XCTAssertNotNil(try? Posix.lstat(other), "files not named by a writer are kept")
    }
}
