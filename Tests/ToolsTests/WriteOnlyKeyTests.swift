import XCTest
import Foundation
import Glibc
@testable import Store

/// `coffer key write-only` and `--key-file`: a client that can back up but never read.
final class WriteOnlyKeyTests: CofferTestCase {
    var keyPath: RawPath { work.appending("web1.key") }

    /// The environment of a client holding only the key file: no passphrase anywhere.
    var writeOnlyEnv: [String: String?] {
        ["COFFER_KEY_FILE": keyPath.description, "COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": nil]
    }

    @discardableResult
    func issueKey(label: String = "web1") throws -> (slot: String, writer: String) {
        let r = try ok(["key", "write-only", "--output", keyPath.description, "--label", label, "--json"])
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        return (try XCTUnwrap(o["id"] as? String), try XCTUnwrap(o["writer"] as? String))
    }

    func testWriteOnlyKeyBacksUpAndCannotReadAnything() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        let (slot, writer) = try issueKey()
        XCTAssertEqual(try Posix.lstat(keyPath).permissions & 0o777, 0o600)
        let text = try String(contentsOfFile: keyPath.description, encoding: .utf8)
        XCTAssertTrue(text.contains(writer))

        // The repository records the key (public part only) and `key list` shows it.
        let list = try ok(["key", "list", "--json"]).stdout
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]])
        let record = try XCTUnwrap(rows.first { ($0["id"] as? String) == slot })
        XCTAssertEqual(record["kind"] as? String, "write-only")
        XCTAssertEqual(record["writer"] as? String, writer)
        XCTAssertEqual(record["read_capable"] as? Bool, false)
        let recordFile = try XCTUnwrap(entryNames(repo.appending("keys")).first { $0.hasPrefix(slot) })
        let recordText = try String(contentsOfFile: repo.appending("keys").appending(recordFile).description, encoding: .utf8)
        XCTAssertFalse(recordText.contains("writer_key") || recordText.contains("index_key"), "the record holds no key material")

        // Backup with nothing but the key file.
        let b = try coffer(["backup", "--host", "web1", "--json", src.description], env: writeOnlyEnv)
        XCTAssertEqual(b.code, 0, b.stderr)
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any])?["snapshot_id"] as? String)

        // Every reading command refuses, naming the key and what it cannot do, exit 12.
        for args in [["ls", "latest"], ["snapshots"], ["restore", "latest", "--target", work.appending("r0").description],
                     ["check"], ["key", "list"], ["mount", work.appending("mnt").description]] {
            let r = try coffer(args, env: writeOnlyEnv)
            XCTAssertEqual(r.code, 12, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("write-only key") && r.stderr.contains(keyPath.description), "\(args): \(r.stderr)")
            XCTAssertEqual(stderrLines(r).count, 1, "one line: \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appending("r0").description), "restore wrote nothing")

        // Its own snapshot does not open with what the key file holds (not even the index key).
        let key = try WriteOnlyKey.load(keyPath)
        let writerKeys = try key.writerKeys(what: "test")
        let opener = Opener(writeOnly: writerKeys)
        let snapshot = try Array(Data(contentsOf: URL(fileURLWithPath: repo.appending("snapshots").appending(id).description)))
        XCTAssertEqual(snapshot[0], Envelope.sealedVersion)
        XCTAssertThrowsError(try opener.open(snapshot, context: EnvelopeContext.snapshot, what: "snapshot")) { e in
            XCTAssertEqual((e as? StoreError)?.code, .writeOnly)
        }

        // A passphrase reads it like any other snapshot: same content and metadata.
        let snaps = try snapshotList()
        XCTAssertEqual(snaps.first { ($0["id"] as? String) == id }?["host"] as? String, "web1")
        let target = work.appending("restore")
        try ok(["restore", id, "--target", target.description])
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
        let check = try coffer(["check", "--read-data"])
        XCTAssertEqual(check.code, 0, check.stdout + check.stderr)
    }

    func testWriteOnlyKeyDeduplicatesAndRunsIncrementally() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try writeRandomFile(src.appending("big.bin"), size: 6 << 20, seed: 7)
        try initRepository()
        try ok(["backup", src.description])              // a reader stored the data first
        try issueKey()

        // First run: reads everything (its catalog is new) but stores almost nothing new.
        let first = backupSummary(try ok(["backup", "--json", src.description], env: writeOnlyEnv))
        XCTAssertGreaterThanOrEqual(first["bytes_read"] as? Int ?? 0, 6 << 20)
        XCTAssertLessThan(first["bytes_added"] as? Int ?? .max, 256 << 10, "deduplicated against the reader's data: \(first)")

        // Second run: nothing is read again.
        let second = backupSummary(try ok(["backup", "--json", src.description], env: writeOnlyEnv))
        XCTAssertEqual(second["bytes_read"] as? Int, 0, "\(second)")
        XCTAssertEqual(second["files_new"] as? Int, 0)
        XCTAssertEqual(second["files_changed"] as? Int, 0)

        // A change is picked up and stored.
        try writeRandomFile(src.appending("new.bin"), size: 1 << 20, seed: 8)
        let third = backupSummary(try ok(["backup", "--json", src.description], env: writeOnlyEnv))
        XCTAssertEqual(third["files_new"] as? Int, 1)
        XCTAssertGreaterThanOrEqual(third["bytes_added"] as? Int ?? 0, 1 << 20)

        // The reader restores the newest (write-only) snapshot exactly.
        let target = work.appending("restore")
        try ok(["restore", "latest", "--target", target.description])
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])

        // And a reader backing up after the write-only client deduplicates against its data too.
        let reader = backupSummary(try ok(["backup", "--json", src.description]))
        XCTAssertLessThan(reader["bytes_added"] as? Int ?? .max, 256 << 10, "\(reader)")
    }

    func testKeyFileReadableByOthersIsRefused() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("a"), "a\n")
        try initRepository()
        try issueKey()
        let before = entryNames(repo.appending("snapshots"))
        for mode: mode_t in [0o640, 0o604, 0o620] {
            chmod(keyPath.description, mode)
            let r = try coffer(["backup", src.description], env: writeOnlyEnv)
            XCTAssertNotEqual(r.code, 0)
            XCTAssertTrue(r.stderr.contains("chmod 600"), r.stderr)
        }
        XCTAssertEqual(entryNames(repo.appending("snapshots")), before, "nothing written")
        chmod(keyPath.description, 0o400)
        try ok(["backup", src.description], env: writeOnlyEnv)
    }

    func testDamagedRemovedOrForeignKeyFileIsRefused() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("a"), "a\n")
        try initRepository()
        let (slot, _) = try issueKey()

        // One changed character in the key material.
        var text = try String(contentsOfFile: keyPath.description, encoding: .utf8)
        let original = text
        let r0 = try XCTUnwrap(text.range(of: "\"writer_key\" : \""))
        let i = text.index(r0.upperBound, offsetBy: 3)
        text.replaceSubrange(i...i, with: text[i] == "A" ? "B" : "A")
        try FileManager.default.removeItem(atPath: keyPath.description)
        try writeFile(keyPath, text, mode: 0o600)
        let damaged = try coffer(["backup", src.description], env: writeOnlyEnv)
        XCTAssertNotEqual(damaged.code, 0)
        XCTAssertTrue(damaged.stderr.contains("check value does not match"), damaged.stderr)
        try FileManager.default.removeItem(atPath: keyPath.description)
        try writeFile(keyPath, original, mode: 0o600)

        // Not a key file at all.
        let junk = work.appending("junk.key")
        try writeFile(junk, "hello\n", mode: 0o600)
        let notKey = try coffer(["backup", src.description], env: ["COFFER_KEY_FILE": junk.description, "COFFER_PASSWORD_FILE": nil])
        XCTAssertNotEqual(notKey.code, 0)
        XCTAssertTrue(notKey.stderr.contains("not a coffer key file"), notKey.stderr)

        // Another repository's key.
        let other = work.appending("other")
        try ok(["init", "--kdf-memory", "1MiB"], env: ["COFFER_REPO": other.description])
        let foreign = try coffer(["backup", src.description], env: writeOnlyEnv.merging(["COFFER_REPO": other.description]) { $1 })
        XCTAssertEqual(foreign.code, 12, foreign.stderr)
        XCTAssertTrue(foreign.stderr.contains("belongs to repository"), foreign.stderr)

        // Removing the record withdraws the key.
        try ok(["backup", src.description], env: writeOnlyEnv)
        try ok(["key", "remove", slot])
        let removed = try coffer(["backup", src.description], env: writeOnlyEnv)
        XCTAssertEqual(removed.code, 12, removed.stderr)
        XCTAssertTrue(removed.stderr.contains("not registered"), removed.stderr)

        // --key-file refuses to overwrite, and the passphrase still works.
        let again = try coffer(["key", "write-only", "--output", keyPath.description])
        XCTAssertNotEqual(again.code, 0)
        XCTAssertTrue(again.stderr.contains("already exists"), again.stderr)
        XCTAssertEqual(try String(contentsOfFile: keyPath.description, encoding: .utf8), original)
    }

    func testKilledWriteOnlyBackupLeavesACheckableRepositoryAndTheNextRunCompletes() throws {
        let src = work.appending("src")
        try mkdirs(src)
        // 84 MiB: after the first 32 MiB pack is published, ~50 MiB (well over the 20 ms poll
        // interval of work) remain before the snapshot; with 42 MiB a fast run could finish first.
        for i in 0..<6 { try sh("head -c \(14 << 20) /dev/urandom > \(shellQuote(src.appending("part-\(i).bin")))") }
        try initRepository()
        try issueKey()
        let p = try startCoffer(["backup", "--host", "web1", src.description], env: writeOnlyEnv)
        let hit = poll(timeout: 60, whileRunning: p) { !self.packFiles().isEmpty }
        let stillRunning = p.isRunning
        p.killHard()
        let res = p.wait()
        XCTAssertTrue(hit && stillRunning && p.wasKilled, "killed after a pack was published (exit \(res.code)): \(res.stderr)")
        XCTAssertEqual(entryNames(repo.appending("snapshots")), [], "no snapshot from the killed run")
        XCTAssertEqual(lockFiles().count, 1, "the killed run leaves its lock")

        // The write-only client reads its own (dead) lock as stale and completes the backup.
        let b = try coffer(["backup", "--host", "web1", "--json", src.description], env: writeOnlyEnv)
        XCTAssertEqual(b.code, 0, b.stderr)
        XCTAssertEqual(lockFiles().count, 0)
        let check = try coffer(["check", "--read-data"])
        XCTAssertEqual(check.code, 0, check.stdout + check.stderr)
        let target = work.appending("restore")
        try ok(["restore", "latest", "--target", target.description])
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
    }
}
