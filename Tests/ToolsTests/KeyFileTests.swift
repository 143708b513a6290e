import XCTest
import Foundation
import Glibc
@testable import Store

/// `coffer key export-key` and `--key-file` / COFFER_KEY_FILE with a read-capable key file.
final class KeyFileTests: CofferTestCase {
    var keyPath: RawPath { work.appending("admin.key") }
    var keyOnly: [String: String?] { ["COFFER_KEY_FILE": keyPath.description, "COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": nil] }

    func testKeyFileReadsAndWritesWithoutAPassphrase() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let r = try ok(["key", "export-key", "--output", keyPath.description, "--label", "restore host", "--json"])
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["id"] as? String)
        XCTAssertEqual(try Posix.lstat(keyPath).permissions & 0o777, 0o600)
        let list = try ok(["key", "list", "--json"]).stdout
        XCTAssertTrue(list.contains("\"key-file\"") && list.contains(id), list)
        let record = try String(contentsOfFile: repo.appending("keys").appending(try XCTUnwrap(entryNames(repo.appending("keys")).first { $0.hasPrefix(id) })).description, encoding: .utf8)
        let master = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keyPath.description))) as? [String: Any])?["master"] as? String)
        XCTAssertFalse(record.contains(master), "the record in keys/ holds no key material")

        try ok(["backup", src.description], env: keyOnly)
        XCTAssertEqual(try snapshotList(env: keyOnly).count, 2)
        let target = work.appending("r")
        try ok(["restore", "latest", "--target", target.description], env: keyOnly)
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
        try ok(["check"], env: keyOnly)
        // It shows as the slot that opened the repository.
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try ok(["key", "list", "--json"], env: keyOnly).stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows.first { ($0["current"] as? Bool) == true }?["id"] as? String, id)
    }

    func testKeyFileIsRefusedWhenExposedWithdrawnOrOutdated() throws {
        try initRepository()
        let r = try ok(["key", "export-key", "--output", keyPath.description, "--json"])
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["id"] as? String)
        chmod(keyPath.description, 0o644)
        let exposed = try coffer(["snapshots"], env: keyOnly)
        XCTAssertNotEqual(exposed.code, 0)
        XCTAssertTrue(exposed.stderr.contains("chmod 600"), exposed.stderr)
        chmod(keyPath.description, 0o600)
        try ok(["snapshots"], env: keyOnly)

        // Rotation outdates it (it holds the old master secret) and says so.
        let rot = try ok(["key", "rotate"])
        XCTAssertTrue(rot.stdout.contains("key files withdrawn") && rot.stdout.contains(id), rot.stdout)
        let outdated = try coffer(["snapshots"], env: keyOnly)
        XCTAssertEqual(outdated.code, 12, outdated.stderr)
        XCTAssertTrue(outdated.stderr.contains("not registered"), outdated.stderr)

        // A new one works; key remove withdraws it.
        try FileManager.default.removeItem(atPath: keyPath.description)
        let again = try ok(["key", "export-key", "--output", keyPath.description, "--json"])
        let id2 = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])?["id"] as? String)
        try ok(["snapshots"], env: keyOnly)
        try ok(["key", "remove", id2])
        XCTAssertEqual(try coffer(["snapshots"], env: keyOnly).code, 12)
    }
}
