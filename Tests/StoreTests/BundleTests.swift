import Glibc
import XCTest
@testable import Store

/// Small files bundled into shared chunks (docs/FORMAT.md §5): slice extents, exact restores,
/// `check`, and incremental backups that store a changed file alone.
final class BundleTests: XCTestCase {
    private var dir: StoreTestDirectory!
    private let passphrase = Array("bundle test".utf8)

    override func setUp() { dir = StoreTestDirectory("coffer-bundle") }
    override func tearDown() { dir.remove() }

    /// Deterministic, compressible text of `count` bytes.
    private func text(_ count: Int, seed: UInt64) -> [UInt8] {
        let words = ["alpha", "beta", "gamma", "delta", "backup", "coffer", "tape", "mount", "chunk", "\n"].map { Array($0.utf8) }
        let noise = storeTestBytes(count: count, seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        var i = 0
        while out.count < count {
            out += words[Int(noise[i % noise.count]) % words.count]
            out.append(0x20)
            i += 1
        }
        return Array(out.prefix(count))
    }

    private var files: [String: [UInt8]] = [:]

    /// 300 small files (1 B – 40 KB) at the top, 40 more in `sub/`, a 200 KB file (too big to
    /// bundle), a hardlinked pair and an empty file.
    private func makeSource() -> RawPath {
        let src = dir.appending("src")
        XCTAssertEqual(src.withCString { mkdir($0, 0o755) }, 0)
        XCTAssertEqual(src.appending("sub").withCString { mkdir($0, 0o755) }, 0)
        let sizes = storeTestBytes(count: 400, seed: 77)
        for i in 0..<300 {
            let size = 1 + (Int(sizes[i]) * 157 + i * 31) % 40_000
            files[String(format: "f%04d", i)] = text(size, seed: UInt64(i))
        }
        for i in 0..<40 { files[String(format: "sub/g%02d", i)] = text(1 + Int(sizes[300 + i]) * 90, seed: 1000 + UInt64(i)) }
        files["large"] = text(200_000, seed: 5000)
        files["empty"] = []
        files["linked-a"] = text(3000, seed: 6000)
        for (name, bytes) in files { storeTestWriteFile(src.appending(name), bytes) }
        XCTAssertEqual(src.appending("linked-a").withCString { a in src.appending("linked-b").withCString { link(a, $0) } }, 0)
        files["linked-b"] = files["linked-a"]
        return src
    }

    private func openRepository() throws -> Repository {
        let backend = LocalBackend(path: dir.appending("repo"))
        if (try? Posix.lstat(dir.appending("repo"))) == nil {
            _ = try Repository.create(backend: backend, passphrase: passphrase, kdf: .scrypt(memoryBytes: 1 << 20))
        }
        return try Repository.open(backend: backend, passphrase: passphrase, cacheDirectory: dir.appending("cache"))
    }

    /// The nodes of directory `path` (absolute) in the snapshot's tree, by name.
    private func nodes(_ repo: Repository, snapshot: String, at path: RawPath) throws -> [String: Node] {
        var tree = try repo.loadTree(try XCTUnwrap(try repo.findSnapshot(snapshot).snapshot.treeID))
        for component in path.components {
            let node = try XCTUnwrap(tree.nodes.first { $0.name == component }, "no \(RawPath(bytes: component))")
            tree = try repo.loadTree(try XCTUnwrap(node.subtree))
        }
        var out: [String: Node] = [:]
        for n in tree.nodes { out[String(decoding: n.name, as: UTF8.self)] = n }
        return out
    }

    private func restoreAndCompare(_ repo: Repository, snapshot: String, source: RawPath) throws {
        let target = dir.appending("restore-\(snapshot.prefix(8))")
        let summary = try Restorer(repository: repo, options: .init(target: target)).run(snapshot: try repo.findSnapshot(snapshot))
        XCTAssertEqual(summary.errors, [])
        let restored = target.appending(source.description.dropFirst().description)
        for (name, bytes) in files {
            XCTAssertEqual(storeTestReadFile(restored.appending(name)), bytes, "restored \(name)")
        }
        let a = try Posix.lstat(restored.appending("linked-a")), b = try Posix.lstat(restored.appending("linked-b"))
        XCTAssertEqual(a.inode, b.inode, "hardlinks restored as hardlinks")
    }

    func testSmallFilesShareChunksAndRestoreExactly() throws {
        let src = makeSource()
        let repo = try openRepository()
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        let top = try nodes(repo, snapshot: result.snapshotID, at: src)

        var blobs = Set<BlobID>()
        var straddling = 0, slices = 0
        for i in 0..<300 {
            let n = try XCTUnwrap(top[String(format: "f%04d", i)])
            XCTAssertEqual(n.size, Int64(files[String(format: "f%04d", i)]!.count))
            XCTAssertEqual(n.content.reduce(0) { $0 + $1.length }, n.size, "extents cover the file")
            for e in n.content {
                guard let d = e.data else { return XCTFail("a hole in a small file") }
                blobs.insert(d.id)
                if case .slice = e { slices += 1 }
            }
            if n.content.count > 1 { straddling += 1 }
        }
        // ~6 MB of small files in chunks of 256 KiB – 8 MiB: a few dozen blobs at most, not 300.
        XCTAssertLessThan(blobs.count, 30)
        XCTAssertGreaterThan(slices, 250)
        XCTAssertGreaterThan(straddling, 0, "a file crossing a cut has two slices")
        // Not bundled: the large file, the hardlinked pair, the empty file.
        XCTAssertTrue(try XCTUnwrap(top["large"]).content.allSatisfy { if case .chunk = $0 { true } else { false } })
        for name in ["linked-a", "linked-b"] {
            guard case .chunk? = try XCTUnwrap(top[name]).content.first else { return XCTFail("\(name) is bundled") }
            XCTAssertEqual(top[name]!.content.count, 1)
        }
        XCTAssertEqual(try XCTUnwrap(top["empty"]).content, [])
        // Files of a subdirectory get a stream of their own.
        let sub = try nodes(repo, snapshot: result.snapshotID, at: src.appending("sub"))
        let subBlobs = Set(sub.values.flatMap { $0.content.compactMap { $0.data?.id } })
        XCTAssertTrue(subBlobs.isDisjoint(with: blobs))
        XCTAssertLessThan(result.snapshot.summary!.blobsAdded, 60)

        try restoreAndCompare(repo, snapshot: result.snapshotID, source: src)
        let report = try Checker(repository: repo).run(readData: true)
        XCTAssertEqual(report.errors, [])
    }

    /// A directory with more small files than the stream buffer holds (8 MiB + 128 KiB) is cut
    /// in several passes: offsets carry over from one pass to the next.
    func testADirectoryLargerThanTheStreamBufferIsCutInPasses() throws {
        let src = dir.appending("src")
        XCTAssertEqual(src.withCString { mkdir($0, 0o755) }, 0)
        let sizes = storeTestBytes(count: 700, seed: 99)
        var total = 0
        for i in 0..<700 {
            let size = 2000 + Int(sizes[i]) * 180 + i % 7      // 2 – 48 KB, ~25 KB on average
            files[String(format: "h%04d", i)] = text(size, seed: 7000 + UInt64(i))
            total += size
        }
        XCTAssertGreaterThan(total, 14 << 20)
        for (name, bytes) in files { storeTestWriteFile(src.appending(name), bytes) }
        let repo = try openRepository()
        let result = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        let top = try nodes(repo, snapshot: result.snapshotID, at: src)
        var blobs = Set<BlobID>()
        for (name, bytes) in files {
            let n = try XCTUnwrap(top[name])
            XCTAssertEqual(n.content.reduce(0) { $0 + $1.length }, Int64(bytes.count), name)
            for e in n.content { blobs.insert(try XCTUnwrap(e.data).id) }
        }
        XCTAssertGreaterThan(blobs.count, 4, "14 MiB of small files is several chunks")
        XCTAssertLessThan(blobs.count, 60)
        let target = dir.appending("restore")
        let summary = try Restorer(repository: repo, options: .init(target: target)).run(snapshot: try repo.findSnapshot(result.snapshotID))
        XCTAssertEqual(summary.errors, [])
        let restored = target.appending(src.description.dropFirst().description)
        for (name, bytes) in files {
            XCTAssertEqual(storeTestReadFile(restored.appending(name)), bytes, "restored \(name)")
        }
        XCTAssertEqual(try Checker(repository: repo).run(readData: true).errors, [])
    }

    /// How a file's range of the stream maps onto the chunks cut from it.
    func testExtentsOfAStreamRange() {
        let a = storeTestBlobID(0xa), b = storeTestBlobID(0xb)
        let chunks: [(start: Int64, length: Int64, id: BlobID)] = [(0, 100, a), (100, 50, b)]
        var c = 0
        XCTAssertEqual(Archiver.extents(start: 0, length: 30, in: chunks, from: &c), [.slice(a, offset: 0, length: 30)])
        XCTAssertEqual(Archiver.extents(start: 30, length: 100, in: chunks, from: &c),
                       [.slice(a, offset: 30, length: 70), .slice(b, offset: 0, length: 30)], "straddles the cut")
        XCTAssertEqual(Archiver.extents(start: 130, length: 0, in: chunks, from: &c), [], "emptied while read: no extent")
        XCTAssertEqual(Archiver.extents(start: 130, length: 20, in: chunks, from: &c), [.slice(b, offset: 30, length: 20)])
        var fresh = 0
        XCTAssertEqual(Archiver.extents(start: 0, length: 100, in: chunks, from: &fresh), [.chunk(a, length: 100)], "a whole chunk")
        XCTAssertEqual(Archiver.extents(start: 100, length: 50, in: chunks, from: &fresh), [.chunk(b, length: 50)])
    }

    func testAChangedSmallFileIsStoredAloneAndTheOthersKeepTheirSlices() throws {
        let src = makeSource()
        let repo = try openRepository()
        let first = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        let before = try nodes(repo, snapshot: first.snapshotID, at: src)

        files["f0100"] = text(5000, seed: 424242)
        storeTestWriteFile(src.appending("f0100"), files["f0100"]!)
        let second = try Archiver(repository: repo, options: BackupOptions(paths: [src], host: "h")).run()
        let s = try XCTUnwrap(second.snapshot.summary)
        XCTAssertEqual(s.filesChanged, 1)
        XCTAssertEqual(s.filesNew, 0)
        XCTAssertEqual(s.bytesRead, 5000, "only the changed file is read")
        XCTAssertLessThan(s.bytesAdded, 64 << 10, "one small blob plus trees, index and snapshot")

        let after = try nodes(repo, snapshot: second.snapshotID, at: src)
        for (name, node) in before where name != "f0100" && name != "sub" {
            XCTAssertEqual(after[name]?.content, node.content, "\(name) keeps its extents")
        }
        guard case .chunk(_, let len)? = after["f0100"]?.content.first else { return XCTFail("changed file not stored alone") }
        XCTAssertEqual(len, 5000)
        try restoreAndCompare(repo, snapshot: second.snapshotID, source: src)
    }
}
