import Glibc
import XCTest
@testable import Store

/// Large files read on the file lane while the walk goes on: the same trees as reading them on
/// the walk's thread, directories written once their last file is done, file-cache rows kept,
/// and a file that vanishes before the lane reads it left out of a partial snapshot.
final class FileLaneTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("file lane".utf8)
    private let mebibyte = 1 << 20

    override func setUp() { dir = StoreTestDirectory("coffer-lane") }
    override func tearDown() { dir.remove() }

    private func mkdirs(_ path: RawPath) {
        var p = RawPath("/")
        for c in path.description.split(separator: "/") {
            p = p.appending(String(c))
            _ = p.withCString { mkdir($0, 0o755) }
        }
    }

    /// Large files at several depths (one alone in a deep directory, so its tree and every
    /// parent's wait for it), small files, a hardlinked large pair, a sparse large file.
    private func makeSource() throws -> RawPath {
        let src = dir.appending("src")
        mkdirs(src.appending("a/b/c/d"))
        mkdirs(src.appending("e"))
        storeTestWriteFile(src.appending("top-large"), storeTestBytes(count: 3 * mebibyte + 17, seed: 1))
        storeTestWriteFile(src.appending("a/b/c/d/deep-large"), storeTestBytes(count: 2 * mebibyte + 5, seed: 2))
        storeTestWriteFile(src.appending("a/mid-large"), storeTestBytes(count: 5 * mebibyte, seed: 3))
        storeTestWriteFile(src.appending("a/b/linked"), storeTestBytes(count: 2 * mebibyte, seed: 4))
        XCTAssertEqual(src.appending("a/b/linked").withCString { a in src.appending("e/linked-too").withCString { link(a, $0) } }, 0)
        for i in 0..<30 {
            storeTestWriteFile(src.appending(i % 2 == 0 ? "e/small-\(i)" : "a/b/small-\(i)"),
                               storeTestBytes(count: 100 + i * 997, seed: 100 + UInt64(i)))
        }
        // 6 MiB with 1 MiB of data in the middle.
        let sparse = try PosixFileHandle.create(src.appending("e/sparse-large"), permissions: 0o644)
        try sparse.truncate(Int64(6 * mebibyte))
        try storeTestBytes(count: mebibyte, seed: 5).withUnsafeBytes { try sparse.pwrite($0, at: Int64(2 * mebibyte)) }
        sparse.close()
        XCTAssertEqual(symlink("top-large", src.appending("e/link").description), 0)
        // Everything the backups create next to the source exists before the first one, and
        // access times are ahead of the change times, so that reading a file or listing a
        // directory (relatime) does not change metadata between the backups compared.
        for name in ["repo", "cache-walk", "cache-lane", "restore"] { mkdirs(dir.appending(name)) }
        let later = timespec(tv_sec: time(nil) + 3600, tv_nsec: 0)
        for name in ["top-large", "a/b/c/d/deep-large", "a/mid-large", "a/b/linked", "e/sparse-large",
                     ".", "a", "a/b", "a/b/c", "a/b/c/d", "e", "e/link"]
            + (0..<30).map({ $0 % 2 == 0 ? "e/small-\($0)" : "a/b/small-\($0)" }) {
            var times = [later, timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)]  // UTIME_OMIT: mtime kept
            XCTAssertEqual(utimensat(AT_FDCWD, src.appending(name).description, &times, AT_SYMLINK_NOFOLLOW), 0, name)
        }
        return src
    }

    private func repository(cache: String) throws -> Repository {
        let backend = LocalBackend(path: dir.appending("repo"))
        if (try? Posix.lstat(dir.appending("repo").appending("config"))) == nil {
            _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        }
        return try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending(cache))
    }

    private func backup(_ paths: [RawPath], cache: String, lane: Bool,
                        hook: ((RawPath) -> Void)? = nil) throws -> (BackupResult, lanes: Int) {
        let (result, lanes, _) = try backupCounting(paths, cache: cache, lane: lane, hook: hook)
        return (result, lanes)
    }

    /// Also returns how many blobs were sealed inline (by the thread that read them).
    private func backupCounting(_ paths: [RawPath], cache: String, lane: Bool,
                                hook: ((RawPath) -> Void)? = nil) throws -> (BackupResult, lanes: Int, inline: Int) {
        let repo = try repository(cache: cache)
        let archiver = try Archiver(repository: repo, options: BackupOptions(paths: paths, host: "h",
                                                                             laneMinimumSize: lane ? Int64(mebibyte) : nil))
        archiver.laneWillRead = hook
        let result = try archiver.run()
        return (result, archiver.laneFileCount, archiver.inlineBlobCount)
    }

    /// The node at `path` (absolute) in the snapshot's tree. Tests compare these rather than
    /// whole snapshot trees, which also hold the metadata of /tmp and the directories above.
    private func node(_ repo: Repository, snapshot: String, at path: RawPath) throws -> Node {
        var tree = try repo.loadTree(try XCTUnwrap(try repo.findSnapshot(snapshot).snapshot.treeID))
        var found: Node?
        for component in path.components {
            if let f = found { tree = try repo.loadTree(try XCTUnwrap(f.subtree)) }
            found = try XCTUnwrap(tree.nodes.first { $0.name == component }, "no \(RawPath(bytes: component))")
        }
        return try XCTUnwrap(found)
    }

    /// The entry names of directory `path` (absolute) in the snapshot's tree, sorted.
    private func names(_ repo: Repository, snapshot: String, at path: RawPath) throws -> [String] {
        var tree = try repo.loadTree(try XCTUnwrap(try repo.findSnapshot(snapshot).snapshot.treeID))
        for component in path.components {
            let node = try XCTUnwrap(tree.nodes.first { $0.name == component }, "no \(RawPath(bytes: component))")
            tree = try repo.loadTree(try XCTUnwrap(node.subtree))
        }
        return tree.nodes.map { String(decoding: $0.name, as: UTF8.self) }.sorted()
    }

    func testLaneWritesTheSameTreesAsTheWalk() throws {
        let src = try makeSource()
        // Each backup with its own (empty) file cache, so each reads every file.
        // The lane's backup first, into the empty repository: its files' chunks are new, and
        // the thread that read them seals them (no copy, no queue).
        let (laned, lanes, inline) = try backupCounting([src], cache: "cache-lane", lane: true)
        let (walk, walkLanes, walkInline) = try backupCounting([src], cache: "cache-walk", lane: false)
        XCTAssertEqual(walkLanes, 0)
        XCTAssertEqual(walkInline, 0)
        XCTAssertEqual(lanes, 4, "top-large, mid-large, deep-large and sparse-large (not the hardlinked pair)")
        // 3 + 2 + 5 + 1 MiB of distinct random data in chunks of 256 KiB–8 MiB (default sizes).
        XCTAssertGreaterThanOrEqual(inline, 4, "every lane file's new chunks are sealed inline")
        XCTAssertFalse(laned.snapshot.partial, "\(laned.summary.errors)")
        let repo = try repository(cache: "cache-lane")
        XCTAssertEqual(try node(repo, snapshot: laned.snapshotID, at: src), try node(repo, snapshot: walk.snapshotID, at: src),
                       "identical content and metadata give the identical tree")
        XCTAssertEqual(laned.summary.filesNew, walk.summary.filesNew)
        XCTAssertEqual(laned.summary.bytesRead, walk.summary.bytesRead)

        // The lane's files got file-cache rows: the next backup reads nothing.
        let (again, _) = try backup([src], cache: "cache-lane", lane: true)
        XCTAssertEqual(try node(repo, snapshot: again.snapshotID, at: src), try node(repo, snapshot: walk.snapshotID, at: src))
        XCTAssertEqual(again.summary.bytesRead, 0)
        XCTAssertEqual(again.summary.filesNew + again.summary.filesChanged, 0)

        // And the snapshot restores.
        let target = dir.appending("restore")
        let summary = try Restorer(repository: repo, options: .init(target: target)).run(snapshot: try repo.findSnapshot(laned.snapshotID))
        XCTAssertEqual(summary.errors, [])
        let restored = target.appending(src.description.dropFirst().description)
        for name in ["top-large", "a/mid-large", "a/b/c/d/deep-large", "e/sparse-large", "e/linked-too", "e/small-0"] {
            XCTAssertEqual(storeTestReadFile(restored.appending(name)), storeTestReadFile(src.appending(name)), name)
        }
    }

    func testALargeFileGivenAsTheOnlyPath() throws {
        let src = try makeSource()
        let file = src.appending("a/mid-large")
        let (walk, _) = try backup([file], cache: "cache-walk", lane: false)
        let (laned, lanes) = try backup([file], cache: "cache-lane", lane: true)
        XCTAssertEqual(lanes, 1)
        let repo = try repository(cache: "cache-lane")
        XCTAssertEqual(try node(repo, snapshot: laned.snapshotID, at: file), try node(repo, snapshot: walk.snapshotID, at: file))
        XCTAssertFalse(try repo.loadTree(try XCTUnwrap(try repo.findSnapshot(laned.snapshotID).snapshot.treeID)).nodes.isEmpty,
                       "the root tree is written after the lane's file")
    }

    func testAFileThatVanishesBeforeTheLaneReadsItIsLeftOut() throws {
        let src = try makeSource()
        let gone = src.appending("a/b/c/d/deep-large")
        let (laned, _) = try backup([src], cache: "cache-lane", lane: true, hook: { path in
            if path == gone { XCTAssertEqual(unlink(path.description), 0) }
        })
        XCTAssertTrue(laned.snapshot.partial)
        XCTAssertEqual(laned.summary.errors.count, 1, "\(laned.summary.errors)")
        XCTAssertTrue(laned.summary.errors.first?.contains(gone.description) ?? false, "\(laned.summary.errors)")

        // Its directory (and every one above it) was still written, without it.
        let repo = try repository(cache: "cache-lane")
        XCTAssertEqual(try names(repo, snapshot: laned.snapshotID, at: src.appending("a/b/c/d")), [])
        XCTAssertEqual(try names(repo, snapshot: laned.snapshotID, at: src.appending("a")), ["b", "mid-large"])
        XCTAssertEqual(try names(repo, snapshot: laned.snapshotID, at: src).count, 3)
    }
}
