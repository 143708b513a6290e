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
