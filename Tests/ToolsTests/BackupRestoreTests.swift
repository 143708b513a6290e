import XCTest
import Foundation
import Glibc
@testable import Store

final class BackupRestoreTests: CofferTestCase {
    func testRoundTripReproducesContentAndMetadata() throws {
        let src = work.appending("src")
        let info = try makeFixture(at: src)
        try initRepository()
        let b = try coffer(["backup", "--host", "web1", "--tag", "nightly", "--json", src.description])
        XCTAssertEqual(b.code, 0, b.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any]
        let s = summary?["summary"] as? [String: Any]
        XCTAssertEqual(s?["files_new"] as? Int, info.fileCount)
        XCTAssertEqual(summary?["partial"] as? Bool, false)

        let target = work.appending("restore")
        try ok(["restore", "latest", "--target", target.description])
        let restored = RawPath(bytes: target.bytes + src.bytes)
        XCTAssertEqual(TreeCompare.differences(src, restored), [])

        // The sparse file's holes stay holes.
        let st = try Posix.lstat(restored.appending("home").appending("ann").appending("sparse.img"))
        XCTAssertEqual(st.size, 10 << 20)
        XCTAssertLessThan(st.blocks * 512, 1 << 20)
    }

    func testSnapshotsAndLsAsTableAndJSON() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", "--host", "web1", "--tag", "nightly", src.appending("etc").description, src.appending("home").description])
        let table = try ok(["snapshots"]).stdout
        XCTAssertTrue(table.contains("web1"))
        XCTAssertTrue(table.contains("nightly"))
        XCTAssertTrue(table.contains("1 snapshot"))
        let ids = try snapshotIDs()
        XCTAssertEqual(ids.count, 1)

        let ls = try ok(["ls", "latest", src.appending("etc").description]).stdout
        XCTAssertTrue(ls.contains(src.appending("etc").appending("hosts").description))
        let lsj = try ok(["ls", "--json", String(ids[0].prefix(6)), src.appending("home").description]).stdout
        let lines = lsj.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertTrue(lines.allSatisfy { $0 != nil }, "every ls --json line is a JSON object")
        let sparse = lines.compactMap { $0 }.first { ($0["name"] as? String) == "sparse.img" }
        XCTAssertEqual(sparse?["size"] as? Int, 10 << 20)
        XCTAssertEqual(sparse?["type"] as? String, "file")
        // a path not in the snapshot
        let missing = try coffer(["ls", "latest", "/no/such/path"])
        XCTAssertNotEqual(missing.code, 0)
    }

    func testUnchangedFilesAreNotReadAgainAndChangesAreFound() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let second = try ok(["backup", "--json", src.description])
        let s2 = try summary(second)
        XCTAssertEqual(s2["files_new"] as? Int, 0)
        XCTAssertEqual(s2["files_changed"] as? Int, 0)
        XCTAssertEqual(s2["bytes_read"] as? Int, 0, "an unchanged tree is not read again")

        try writeFile(src.appending("etc").appending("hosts"), "10.0.0.1 changed\n")
        let third = try ok(["backup", "--json", src.description])
        let s3 = try summary(third)
        XCTAssertEqual(s3["files_changed"] as? Int, 1)
        XCTAssertEqual(s3["bytes_read"] as? Int, 17)
        XCTAssertEqual(try snapshotIDs().count, 3)

        // The oldest snapshot still restores the old content.
        let first = try snapshotIDs()[0]
        try ok(["restore", first, "--target", work.appending("old").description, "--include", src.appending("etc").description])
        let old = try TreeCompare.readAll(RawPath(bytes: work.appending("old").bytes + src.appending("etc").appending("hosts").bytes))
        XCTAssertEqual(String(decoding: old, as: UTF8.self), "127.0.0.1 localhost\n")
    }

    func testDeduplicationAcrossHosts() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeBytes(src.appending("blob"), randomBytes(6 << 20, seed: 9))
        try initRepository()
        let a = try summary(try ok(["backup", "--host", "a", "--json", src.description]))
        let copy = work.appending("copy")
        try mkdirs(copy)
        try writeBytes(copy.appending("same-content"), randomBytes(6 << 20, seed: 9))
        let b = try summary(try ok(["backup", "--host", "b", "--json", copy.description]))
        let addedA = a["bytes_added"] as? Int ?? 0, addedB = b["bytes_added"] as? Int ?? 0
        XCTAssertGreaterThan(addedA, 6 << 20)
        XCTAssertLessThan(addedB, 64 << 10, "identical content from another host adds only metadata")
    }

    func testReadConcurrencyOneGivesTheSameSnapshotTree() throws {
        let src = work.appending("src")
        try mkdirs(src.appending("sub"))
        try writeBytes(src.appending("big"), randomBytes(3 << 20, seed: 21))
        try writeBytes(src.appending("sub").appending("big-too"), randomBytes((2 << 20) + 7, seed: 22))
        try writeBytes(src.appending("small"), randomBytes(5000, seed: 23))
        try initRepository()
        // Nothing the backups create or read may change what they record: the cache
        // directories exist before either runs, and access times are ahead of the change
        // times, so reading (relatime) leaves them alone.
        try mkdirs(work.appending("cache-1"))
        try mkdirs(work.appending("cache-2"))
        var times = [timespec(tv_sec: time(nil) + 3600, tv_nsec: 0), timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)]  // mtime: UTIME_OMIT
        for p in [src, src.appending("sub"), src.appending("big"), src.appending("sub").appending("big-too"), src.appending("small")] {
            XCTAssertEqual(utimensat(AT_FDCWD, p.description, &times, 0), 0, p.description)
        }
        let bad = try coffer(["backup", "--read-concurrency", "3", src.description])
        XCTAssertEqual(bad.code, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--read-concurrency must be 1 or 2"), bad.stderr)
        // Reading the files again (a new catalog) one at a time or two at a time: the same tree.
        let one = try ok(["backup", "--read-concurrency", "1", "--json", "--cache-dir", work.appending("cache-1").description, src.description])
        let two = try ok(["backup", "--json", "--cache-dir", work.appending("cache-2").description, src.description])
        XCTAssertEqual(try summary(one)["bytes_read"] as? Int, (5 << 20) + 5007)
        XCTAssertEqual(try summary(two)["bytes_read"] as? Int, (5 << 20) + 5007)
        // The source directory's tree is the same in both snapshots (the trees above it hold
        // the mtimes of /tmp and the like, which other programs may change meanwhile).
        let repo = try Repository.open(backend: LocalBackend(path: self.repo), passphrase: Array("correct horse battery staple".utf8),
                                       cacheDirectory: cache)
        let trees = try repo.snapshots().map { snap -> BlobID in
            var tree = try repo.loadTree(try XCTUnwrap(snap.snapshot.treeID))
            var id: BlobID?
            for component in src.components {
                let node = try XCTUnwrap(tree.nodes.first { $0.name == component })
                id = try XCTUnwrap(node.subtree)
                tree = try repo.loadTree(id!)
            }
            return try XCTUnwrap(id)
        }
        XCTAssertEqual(trees.count, 2)
        XCTAssertEqual(Set(trees).count, 1, "\(trees)")
    }

    func testRestoreIncludeNarrowsToOnePath() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let target = work.appending("r")
        try ok(["restore", "latest", "--target", target.description, "--include", src.appending("etc").description])
        let base = RawPath(bytes: target.bytes + src.bytes)
        XCTAssertNotNil(try? Posix.lstat(base.appending("etc").appending("hosts")))
        XCTAssertNil(try? Posix.lstat(base.appending("home")))
        XCTAssertEqual(TreeCompare.differences(src.appending("etc"), base.appending("etc")).filter { !$0.contains("hardlink") }, [])
    }

    func testRestoreOverAnEarlierRestoreReplacesFilesAndFollowsNoSymlink() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let target = work.appending("r")
        try ok(["restore", "latest", "--target", target.description])
        let base = RawPath(bytes: target.bytes + src.bytes)
        // Damage the earlier restore: a longer file, a file swapped for a symlink to a file
        // outside the target, a changed mode, a hardlinked name made an ordinary file.
        let etc = base.appending("etc"), ann = base.appending("home").appending("ann")
        try writeBytes(etc.appending("hosts"), randomBytes(100_000, seed: 9))
        let outside = work.appending("outside")
        try writeFile(outside, "must stay\n")
        try Posix.remove(etc.appending("passwd-tool"))
        try Posix.makeSymlink(etc.appending("passwd-tool"), target: Array(outside.bytes))
        try Posix.setPermissions(etc.appending("big.bin"), 0o600)
        try Posix.remove(ann.appending("linked-b"))
        try writeFile(ann.appending("linked-b"), "not a link any more, and longer than before\n")

        try ok(["restore", "latest", "--target", target.description])
        XCTAssertEqual(TreeCompare.differences(src, base), [])
        XCTAssertEqual(try String(contentsOfFile: outside.description, encoding: .utf8), "must stay\n")
    }

    func summary(_ r: Result) throws -> [String: Any] {
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        return o?["summary"] as? [String: Any] ?? [:]
    }
}
