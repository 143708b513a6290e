import XCTest
import Foundation
import Glibc
@testable import Store
import Crypto

/// `coffer key rotate`: new data keys for new writes, old data readable, retired keys rejected.
final class KeyRotationTests: CofferTestCase {
    var keysDir: RawPath { repo.appending("keys") }

    func keyList() throws -> [[String: Any]] {
        let r = try ok(["key", "list", "--json"])
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
    }
    func slotID(label: String) throws -> String {
        try XCTUnwrap(try keyList().first { ($0["label"] as? String) == label }?["id"] as? String, "no slot labelled \(label)")
    }
    func slotFile(_ id: String) throws -> RawPath {
        keysDir.appending(try XCTUnwrap(entryNames(keysDir).first { $0.hasPrefix(id) }, "no file \(id)"))
    }
    func passFile(_ name: String, _ passphrase: String) throws -> String {
        let p = work.appending(name)
        try writeFile(p, passphrase + "\n", mode: 0o600)
        return p.description
    }
    func snapshotIDsJSON(env: [String: String?] = [:]) throws -> [String] {
        try snapshotList(env: env).compactMap { $0["id"] as? String }
    }

    func testRotationKeepsOldDataAndRejectsRetiredWriters() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", "--host", "vm", src.description])
        try ok(["key", "add", "--label", "ops", "--kdf-memory", "1MiB"], env: ["COFFER_NEW_PASSWORD": "ops passphrase"])
        let opsFile = try passFile("ops", "ops passphrase")
        let w1 = work.appending("w1.key"), w2 = work.appending("w2.key")
        try ok(["key", "write-only", "--output", w1.description, "--label", "web1"])
        try ok(["key", "write-only", "--output", w2.description, "--label", "web2"])
        try ok(["backup", "--host", "web2", src.description], env: ["COFFER_KEY_FILE": w2.description])
        let before = try snapshotIDsJSON()
        XCTAssertEqual(before.count, 2)
        let (opsID, web1ID, web2ID) = (try slotID(label: "ops"), try slotID(label: "web1"), try slotID(label: "web2"))
        let opsSlot = try Array(Data(contentsOf: URL(fileURLWithPath: try slotFile(opsID).description)))
        let web2Record = try Array(Data(contentsOf: URL(fileURLWithPath: try slotFile(web2ID).description)))

        // A passphrase slot it cannot re-make must be named: refused, nothing changed.
        let files = entryNames(keysDir)
        let refused = try cofferWithoutTerminal(["key", "rotate", "--retire", web2ID])   // no terminal: no prompt
        XCTAssertEqual(refused.code, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains(opsID) && refused.stderr.contains("--retire"), refused.stderr)
        XCTAssertEqual(entryNames(keysDir), files)

        // Rotate, retiring the ops passphrase and web2's write-only key.
        let r = try ok(["key", "rotate", "--retire", opsID, "--retire", web2ID, "--reason", "laptop stolen", "--json"])
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(out["generation"] as? Int, 1)
        XCTAssertEqual(out["accepted_snapshots"] as? Int, 2)
        XCTAssertEqual(Set(out["retired_write_only"] as? [String] ?? []), [web1ID, web2ID],
                       "a retired passphrase could derive every write-only key: all are retired")
        let kinds = try keyList().map { $0["kind"] as? String ?? "" }
        XCTAssertEqual(kinds.sorted(), ["generation", "passphrase"])

        // The retired passphrase no longer opens anything; the current one reads old and new data.
        let ops = try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": opsFile])
        XCTAssertEqual(ops.code, 12, ops.stderr)
        XCTAssertEqual(try snapshotIDsJSON(), before)
        try ok(["backup", "--host", "vm", src.description])
        let list = try snapshotList()
        XCTAssertEqual(list.count, 3)
        XCTAssertEqual(list.last?["key_generation"] as? Int, 1)
        for id in try snapshotIDsJSON() {
            let target = work.appending("r-\(id.prefix(8))")
            try ok(["restore", id, "--target", target.description])
            XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [], id)
        }
        // Retired write-only keys stop (their records are gone).
        for key in [w1, w2] {
            let b = try coffer(["backup", src.description], env: ["COFFER_KEY_FILE": key.description])
            XCTAssertEqual(b.code, 12, b.stderr)
        }

        // A malicious holder of web2's key puts its record back and backs up anyway: every reader
        // rejects that snapshot, says so, and check fails naming it.
        try writeFile(keysDir.appending(Hex.encode(SHA256Digest.of(web2Record))), String(decoding: web2Record, as: UTF8.self))
        let forged = try ok(["backup", "--host", "web2", "--json", src.description], env: ["COFFER_KEY_FILE": w2.description])
        let forgedID = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(forged.stdout.utf8)) as? [String: Any])?["snapshot_id"] as? String)
        XCTAssertTrue(entryNames(repo.appending("snapshots")).contains(forgedID))
        let snaps = try coffer(["snapshots", "--json"])
        XCTAssertEqual(snaps.code, 0)
        XCTAssertFalse(snaps.stdout.contains(forgedID), "rejected snapshot not listed")
        XCTAssertTrue(snaps.stderr.contains("ignoring snapshot \(forgedID.prefix(8))") && snaps.stderr.contains("retired"), snaps.stderr)
        let restore = try coffer(["restore", String(forgedID.prefix(8)), "--target", work.appending("bad").description])
        XCTAssertNotEqual(restore.code, 0)
        let check = try coffer(["check"])
        XCTAssertEqual(check.code, 13, check.stdout + check.stderr)
        XCTAssertTrue((check.stdout + check.stderr).contains("\(forgedID.prefix(8)) is rejected"), check.stdout + check.stderr)
        // The mount is a reader too: the rejected snapshot is not in it, the accepted ones are.
        if access("/dev/fuse", R_OK | W_OK) == 0 {
            let mnt = work.appending("mnt")
            try mkdirs(mnt)
            try ok(["mount", "--daemon", mnt.description])
            defer { _ = try? run("/bin/fusermount3", ["-u", "-z", mnt.description]) }
            XCTAssertNil(try? Posix.lstat(mnt.appending("ids").appending(String(forgedID.prefix(8)))), "rejected snapshot hidden")
            for id in before { XCTAssertNotNil(try? Posix.lstat(mnt.appending("ids").appending(String(id.prefix(8)))), id) }
        }

        // The same for the retired passphrase: its old slot file put back opens only generation 0,
        // and the tool refuses to back up with such an outdated key.
        try writeFile(keysDir.appending(Hex.encode(SHA256Digest.of(opsSlot))), String(decoding: opsSlot, as: UTF8.self))
        let stale = try coffer(["backup", src.description], env: ["COFFER_PASSWORD_FILE": opsFile])
        XCTAssertEqual(stale.code, 12, stale.stderr)
        XCTAssertTrue(stale.stderr.contains("rotated to generation 1"), stale.stderr)

        // A modified client would write anyway (generation 0 keys from the old slot): rejected too.
        let old = try Repository.open(backend: LocalBackend(path: repo), passphrase: Array("ops passphrase".utf8),
                                      cacheDirectory: work.appending("attacker-cache"))
        XCTAssertEqual(try old.keys.generation, 0)
        var copy = try XCTUnwrap(try old.snapshots().first).snapshot
        copy.host = "evil"
        let evil = try old.saveSnapshot(copy, sealer: try Sealer(keys: try old.keys))
        let after = try coffer(["snapshots", "--json"])
        XCTAssertFalse(after.stdout.contains(evil))
        XCTAssertTrue(after.stderr.contains("ignoring snapshot \(evil.prefix(8))") && after.stderr.contains("key generation 0"), after.stderr)
    }

    func testWriteOnlyKeysSurviveARotationThatRetiresOnlyAWriter() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("a"), "a\n")
        try initRepository()
        let w1 = work.appending("w1.key"), w2 = work.appending("w2.key")
        try ok(["key", "write-only", "--output", w1.description, "--label", "web1"])
        try ok(["key", "write-only", "--output", w2.description, "--label", "web2"])
        let r = try ok(["key", "rotate", "--retire", try slotID(label: "web2"), "--json"])
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(out["kept_write_only"] as? [String], [try slotID(label: "web1")])
        // web1 (generation 0) keeps backing up after the rotation and readers accept it.
        let b = try ok(["backup", "--host", "web1", "--json", src.description], env: ["COFFER_KEY_FILE": w1.description])
        let id = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any])?["snapshot_id"] as? String)
        let snaps = try coffer(["snapshots", "--json"])
        XCTAssertTrue(snaps.stdout.contains(id), snaps.stdout)
        XCTAssertFalse(snaps.stderr.contains("ignoring"), snaps.stderr)
        try ok(["check", "--read-data"])
    }

    func testRecoverySheetAfterRotationReadsEverything() throws {
        let src = work.appending("src")
        try makeFixture(at: src)
        try initRepository()
        try ok(["backup", src.description])
        let oldSheet = work.appending("old-sheet.txt")
        try ok(["key", "export-recovery", "--output", oldSheet.description])
        try ok(["key", "rotate"])
        try ok(["backup", src.description])
        let sheet = work.appending("sheet.txt")
        try ok(["key", "export-recovery", "--output", sheet.description])
        XCTAssertTrue(try String(contentsOfFile: sheet.description, encoding: .utf8).contains("Key generation: 1"))
        let ids = try snapshotIDsJSON()

        // Lose every slot; the current sheet alone gets everything back.
        for name in entryNames(keysDir) {
            let f = try Array(Data(contentsOf: URL(fileURLWithPath: keysDir.appending(name).description)))
            if !String(decoding: f, as: UTF8.self).contains("\"generation\"") || String(decoding: f, as: UTF8.self).contains("\"passphrase\"") {
                try FileManager.default.removeItem(atPath: keysDir.appending(name).description)
            }
        }
        let fresh = work.appending("cache2")
        let newPass = try passFile("new", "recovered passphrase")
        let env: [String: String?] = ["COFFER_NEW_PASSWORD": "recovered passphrase", "COFFER_PASSWORD_FILE": nil,
                                      "COFFER_CACHE_DIR": fresh.description]
        try ok(["key", "import-recovery", sheet.description], env: env)
        let readEnv: [String: String?] = ["COFFER_PASSWORD_FILE": newPass, "COFFER_CACHE_DIR": fresh.description]
        XCTAssertEqual(try snapshotIDsJSON(env: readEnv), ids)
        for id in ids {
            let target = work.appending("r-\(id.prefix(8))")
            try ok(["restore", id, "--target", target.description], env: readEnv)
            XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [], id)
        }
        try ok(["backup", src.description], env: readEnv)

        // The old sheet still imports (with a warning) but reads only what predates the rotation.
        let oldEnv: [String: String?] = ["COFFER_NEW_PASSWORD": "old sheet passphrase", "COFFER_PASSWORD_FILE": nil,
                                         "COFFER_CACHE_DIR": work.appending("cache3").description]
        let imported = try ok(["key", "import-recovery", oldSheet.description], env: oldEnv)
        XCTAssertTrue(imported.stderr.contains("rotated to generation 1"), imported.stderr)
    }

    func testGenerationRecordsCannotBeRemoved() throws {
        try initRepository()
        try ok(["key", "rotate"])
        let record = try XCTUnwrap(try keyList().first { ($0["kind"] as? String) == "generation" }?["id"] as? String)
        let r = try coffer(["key", "remove", record])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("never removed"), r.stderr)
    }

    func testInterruptedRotationLeavesAWorkingRepositoryAndTheNextRotateCleansUp() throws {
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("a"), "a\n")
        try initRepository()
        try ok(["backup", src.description])
        let backend = LocalBackend(path: repo)
        let config = try Repository.readConfig(backend)
        let passphrase = Array(try String(contentsOfFile: passwordFile.description, encoding: .utf8).split(separator: "\n")[0].utf8)

        // Killed after writing the new generation's slot, before its record: that slot's master
        // secret is lost. The same passphrase must still open generation 0, and rotate again.
        let lost = try KeyFile.passphrase(passphrase, master: SecretBytes.random(count: 64), repositoryID: config.idBytes,
                                          kdf: .scrypt(memoryBytes: 1 << 20), label: nil, generation: 1)
        try Repository.addKeySlot(lost, to: backend)
        try ok(["backup", src.description])
        let list = try keyList()
        XCTAssertEqual(list.filter { ($0["outdated"] as? Bool) == true }.count, 1, "\(list)")
        try ok(["key", "rotate"])
        let after = try keyList()
        XCTAssertEqual(after.compactMap { $0["kind"] as? String }.sorted(), ["generation", "passphrase"], "\(after)")
        XCTAssertEqual(after.first { ($0["kind"] as? String) == "passphrase" }?["generation"] as? Int, 1)

        // Killed after the record, before deleting the old slots: an old slot put back is
        // outdated, the newest slot is the one that opens, and the next rotate removes it.
        let keysDir = repo.appending("keys")
        let gen1Name = try XCTUnwrap(entryNames(keysDir).first { name in
            (try? String(contentsOfFile: keysDir.appending(name).description, encoding: .utf8))?.contains("\"passphrase\"") ?? false
        })
        let gen1Bytes = try String(contentsOfFile: keysDir.appending(gen1Name).description, encoding: .utf8)
        try ok(["key", "rotate"])
        try writeFile(keysDir.appending(gen1Name), gen1Bytes, mode: 0o600)
        let mixed = try keyList()
        XCTAssertEqual(mixed.first { ($0["name"] as? String) == gen1Name }?["outdated"] as? Bool, true, "\(mixed)")
        XCTAssertEqual(mixed.first { ($0["current"] as? Bool) == true }?["generation"] as? Int, 2, "the newest slot opens")
        try ok(["backup", src.description])
        XCTAssertEqual(try snapshotIDsJSON().count, 3)
        try ok(["key", "rotate"])
        let final = try keyList()
        XCTAssertFalse(final.contains { ($0["name"] as? String) == gen1Name })
        XCTAssertEqual(final.filter { ($0["kind"] as? String) == "passphrase" }.map { $0["generation"] as? Int }, [3])
        XCTAssertEqual(final.filter { ($0["kind"] as? String) == "generation" }.count, 3)
        try ok(["check"])
    }

    /// Runs coffer on a pseudo-terminal and answers its prompts: each time a line ending in
    /// `marker` appears, it types the answer whose key the line contains (python3's pty module;
    /// 60 s deadline; an unexpected prompt gets an empty line).
    func cofferOnTerminal(_ args: [String], marker: String, answers: [String: String], env: [String: String?] = [:]) throws -> Result {
        var e = baseEnvironment
        for (k, v) in env { e[k] = v }
        let driver = """
            import json, os, pty, select, sys, time
            marker, answers, argv = sys.argv[1].encode(), json.loads(sys.argv[2]), sys.argv[3:]
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(argv[0], argv)
            out, seen, deadline = b"", 0, time.monotonic() + 60
            while time.monotonic() < deadline:
                r, _, _ = select.select([fd], [], [], 0.5)
                if not r:
                    continue
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                while out.count(marker) > seen:
                    prompt = out.split(marker)[seen].decode(errors="replace").splitlines()[-1]
                    reply = next((v for k, v in answers.items() if k in prompt), "")
                    os.write(fd, reply.encode() + b"\\n")
                    seen += 1
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        let json = String(decoding: try JSONSerialization.data(withJSONObject: answers), as: UTF8.self)
        return try run("/usr/bin/python3", ["-c", driver, marker, json, CofferTestCase.binary] + args,
                       environment: e.compactMapValues { $0 })
    }

    func testRotateAsksForTheOtherPassphrasesOnATerminal() throws {
        try initRepository()
        try ok(["key", "add", "--label", "ops", "--kdf-memory", "1MiB"], env: ["COFFER_NEW_PASSWORD": "ops passphrase"])
        try ok(["key", "add", "--label", "dev", "--kdf-memory", "1MiB"], env: ["COFFER_NEW_PASSWORD": "dev passphrase"])
        let ops = try passFile("ops", "ops passphrase"), dev = try passFile("dev", "dev passphrase")

        // A wrong passphrase for one of them: refused, nothing changed.
        let files = entryNames(keysDir)
        let wrong = try cofferOnTerminal(["key", "rotate"], marker: "to retire it: ", answers: ["(ops)": "not it", "(dev)": "dev passphrase"])
        XCTAssertEqual(wrong.code, 12, wrong.stdout)
        XCTAssertTrue(wrong.stdout.contains("does not open it"), wrong.stdout)
        XCTAssertEqual(entryNames(keysDir), files)

        // ops is kept (re-made for generation 1), dev retired (empty answer).
        let r = try cofferOnTerminal(["key", "rotate"], marker: "to retire it: ", answers: ["(ops)": "ops passphrase", "(dev)": ""])
        XCTAssertEqual(r.code, 0, r.stdout)
        XCTAssertTrue(r.stdout.contains("rotated to key generation 1"), r.stdout)
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": ops])
        XCTAssertEqual(try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": dev]).code, 12)
        let slots = try keyList().filter { ($0["kind"] as? String) == "passphrase" }
        XCTAssertEqual(slots.count, 2)
        XCTAssertTrue(slots.allSatisfy { ($0["generation"] as? Int) == 1 }, "\(slots)")
        XCTAssertEqual(Set(slots.compactMap { $0["label"] as? String }), ["ops"], "the main slot has no label; ops kept its label")
    }
}
