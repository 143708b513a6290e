import XCTest
import Foundation
import Glibc
@testable import Store

/// `coffer key …`: slots, passphrase changes and the recovery sheet, through the real binary.
final class KeyTests: CofferTestCase {
    let firstPassphrase = "correct horse battery staple"     // the harness's password file

    /// A password file holding `passphrase`.
    func passFile(_ name: String, _ passphrase: String) throws -> String {
        let p = work.appending(name)
        try writeFile(p, passphrase + "\n", mode: 0o600)
        return p.description
    }

    func keyList(_ env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try ok(["key", "list", "--json"], env: env, file: file, line: line)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout, file: file, line: line)
    }

    var slotFiles: [String] { entryNames(repo.appending("keys")) }

    /// The 8-digit id in "added key slot 1a2b3c4d" / "replaced by 1a2b3c4d".
    func printedID(_ r: Result, after marker: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard let range = r.stdout.range(of: marker) else {
            XCTFail("no \"\(marker)\" in \(r.stdout)", file: file, line: line)
            return ""
        }
        return String(r.stdout[range.upperBound...].prefix(8))
    }

    func initWithLabel(_ label: String) throws {
        try ok(["init", "--kdf-memory", "1MiB", "--label", label])
    }

    func addSlot(_ passphrase: String, label: String, env: [String: String?] = [:]) throws -> String {
        var e = env
        e["COFFER_NEW_PASSWORD"] = passphrase
        let r = try ok(["key", "add", "--label", label, "--kdf-memory", "1MiB"], env: e)
        let id = printedID(r, after: "added key slot ")
        XCTAssertTrue(slotFiles.contains { $0.hasPrefix(id) }, "the printed id \(id) names a file in keys/: \(slotFiles)")
        return id
    }

    // MARK: - add / list

    func testAddedSlotOpensAndListShowsBothSlots() throws {
        try initWithLabel("first")
        let firstID = String(try XCTUnwrap(slotFiles.first).prefix(8))
        let second = try passFile("pass2", "a second passphrase")
        let secondID = try addSlot("a second passphrase", label: "second")
        XCTAssertEqual(slotFiles.count, 2)
        for name in slotFiles {
            XCTAssertEqual(try Posix.lstat(repo.appending("keys").appending(name)).permissions & 0o777, 0o600, "key file \(name) is 0600")
        }

        // Both passphrases open the repository.
        try ok(["snapshots"])
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": second])
        let wrong = try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "neither of them"])
        XCTAssertEqual(wrong.code, 12, wrong.stderr)

        let list = try keyList()
        XCTAssertEqual(list.count, 2, "\(list)")
        let byID = Dictionary(uniqueKeysWithValues: list.map { ($0["id"] as? String ?? "", $0) })
        XCTAssertEqual(byID[firstID]?["label"] as? String, "first")
        XCTAssertEqual(byID[secondID]?["label"] as? String, "second")
        XCTAssertEqual(byID[firstID]?["current"] as? Bool, true, "the slot the passphrase opened is marked")
        XCTAssertEqual(byID[secondID]?["current"] as? Bool, false)
        for s in list {
            XCTAssertEqual(s["kind"] as? String, "passphrase")
            XCTAssertEqual(s["read_capable"] as? Bool, true)
            XCTAssertEqual(s["hostname"] as? String, SystemInfo.hostname)
            XCTAssertEqual(s["username"] as? String, SystemInfo.username)
            XCTAssertNotNil(Timestamp(rfc3339: s["created"] as? String ?? ""), "\(s)")
            XCTAssertNotNil(Timestamp(rfc3339: s["last_used"] as? String ?? ""), "both slots were used here: \(s)")
        }
        // With the other passphrase the other slot is the current one.
        let list2 = try keyList(["COFFER_PASSWORD_FILE": second])
        XCTAssertEqual(list2.first { $0["current"] as? Bool == true }?["id"] as? String, secondID)

        // The table marks the current slot.
        let table = try ok(["key", "list"]).stdout
        let marked = table.split(separator: "\n").filter { $0.hasPrefix("*") }
        XCTAssertEqual(marked.count, 1, table)
        XCTAssertTrue(marked.first?.contains(firstID) == true, table)

        // "Last used" is per machine: a fresh catalog has seen only the slot that opens it now.
        let elsewhere = try keyList(["COFFER_CACHE_DIR": work.appending("other-cache").description])
        XCTAssertEqual(elsewhere.filter { !($0["last_used"] is NSNull) && $0["last_used"] != nil }.map { $0["id"] as? String }, [firstID])
    }

    func testAddNeedsANewPassphraseSource() throws {
        try initRepository()
        let before = slotFiles
        let r = try cofferWithoutTerminal(["key", "add", "--kdf-memory", "1MiB"], env: ["COFFER_NEW_PASSWORD": nil])
        XCTAssertNotEqual(r.code, 124, "key add hung waiting for a passphrase")
        XCTAssertEqual(r.code, 1, r.stderr)
        XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("COFFER_NEW_PASSWORD"), r.stderr)
        // The same passphrase again is refused, and a wrong current passphrase exits 12 before anything else.
        let same = try coffer(["key", "add", "--kdf-memory", "1MiB"], env: ["COFFER_NEW_PASSWORD": firstPassphrase])
        XCTAssertEqual(same.code, 1, same.stderr)
        XCTAssertFalse(same.stderr.contains(firstPassphrase), "no passphrase in messages: \(same.stderr)")
        let wrong = try coffer(["key", "add", "--kdf-memory", "1MiB"],
                               env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "nope", "COFFER_NEW_PASSWORD": "fresh one"])
        XCTAssertEqual(wrong.code, 12, wrong.stderr)
        XCTAssertEqual(slotFiles, before, "nothing was written")
    }

    func testUnknownSlotKindsAreSkippedAndNotCountedAsReadCapable() throws {
        try initWithLabel("only")
        let onlyID = try XCTUnwrap(slotFiles.first)
        let config = try JSONSerialization.jsonObject(with: Data(try TreeCompare.readAll(repo.appending("config")))) as? [String: Any]
        let future = Array("""
            {"version": 1, "kind": "future-kind", "repository": "\(config?["id"] as? String ?? "")", "created": "2027-01-01T00:00:00Z",
             "hostname": "h", "username": "u", "label": "gpg", "sealed": "AAAA"}

            """.utf8)
        let name = Hex.encode(SHA256Digest.of(future))
        try writeBytes(repo.appending("keys").appending(name), future, mode: 0o600)
        try writeBytes(repo.appending("keys").appending("00000000"), Array("not json".utf8), mode: 0o600)

        try ok(["snapshots"])
        let list = try keyList()
        XCTAssertEqual(list.count, 3, "\(list)")
        let gpg = try XCTUnwrap(list.first { $0["id"] as? String == String(name.prefix(8)) })
        XCTAssertEqual(gpg["kind"] as? String, "future-kind")
        XCTAssertEqual(gpg["label"] as? String, "gpg")
        XCTAssertEqual(gpg["read_capable"] as? Bool, false)
        XCTAssertEqual(list.first { $0["id"] as? String == "00000000" }?["kind"] as? String, "unreadable")

        // The passphrase slot stays the last read-capable one; unknown and damaged slots can be removed.
        let r = try coffer(["key", "remove", String(onlyID.prefix(8))])
        XCTAssertEqual(r.code, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("last"), r.stderr)
        try ok(["key", "remove", String(name.prefix(10))])
        try ok(["key", "remove", "00000000"])
        XCTAssertEqual(slotFiles, [onlyID])
    }

    // MARK: - passwd

    func testPasswdChangesThePassphrase() throws {
        try initWithLabel("main")
        let oldFile = passwordFile.description
        let oldID = String(try XCTUnwrap(slotFiles.first).prefix(8))
        let r = try ok(["key", "passwd"], env: ["COFFER_NEW_PASSWORD": "the new passphrase"])
        let newID = printedID(r, after: "replaced by ")
        XCTAssertNotEqual(newID, oldID)
        XCTAssertTrue(r.stdout.contains(oldID), r.stdout)
        XCTAssertEqual(slotFiles.count, 1)
        XCTAssertTrue(slotFiles[0].hasPrefix(newID))

        let old = try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": oldFile])
        XCTAssertEqual(old.code, 12, "the old passphrase no longer opens: \(old.stderr)")
        let newFile = try passFile("new", "the new passphrase")
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": newFile])
        let list = try keyList(["COFFER_PASSWORD_FILE": newFile])
        XCTAssertEqual(list.map { $0["label"] as? String }, ["main"], "the label is kept")
        XCTAssertEqual(list.first?["current"] as? Bool, true)

        // Another slot, by prefix, while opened with a different passphrase.
        let otherID = try addSlot("other one", label: "other", env: ["COFFER_PASSWORD_FILE": newFile])
        let r2 = try ok(["key", "passwd", otherID], env: ["COFFER_PASSWORD_FILE": newFile, "COFFER_NEW_PASSWORD": "other two"])
        let other2 = printedID(r2, after: "replaced by ")
        XCTAssertEqual(try coffer(["snapshots"], env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "other one"]).code, 12)
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "other two"])
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": newFile])
        XCTAssertEqual(Set(try keyList(["COFFER_PASSWORD_FILE": newFile]).map { $0["label"] as? String ?? "" }), ["main", "other"])
        XCTAssertTrue(slotFiles.contains { $0.hasPrefix(other2) })

        // The same passphrase again is refused, nothing changes.
        let before = slotFiles
        let same = try coffer(["key", "passwd"], env: ["COFFER_PASSWORD_FILE": newFile, "COFFER_NEW_PASSWORD": "the new passphrase"])
        XCTAssertEqual(same.code, 1, same.stderr)
        XCTAssertEqual(slotFiles, before)
    }

    // MARK: - remove

    func testRemoveRefusesTheLastSlotAndBadPrefixes() throws {
        try initWithLabel("first")
        let firstID = String(try XCTUnwrap(slotFiles.first).prefix(8))
        let last = try coffer(["key", "remove", firstID])
        XCTAssertEqual(last.code, 1, last.stderr)
        XCTAssertEqual(stderrLines(last).count, 1, last.stderr)
        XCTAssertTrue(last.stderr.contains("last"), last.stderr)
        XCTAssertEqual(slotFiles.count, 1, "nothing was removed")
        try ok(["snapshots"])

        let secondID = try addSlot("second passphrase", label: "second")
        // Unknown, invalid and ambiguous prefixes.
        let unused = try XCTUnwrap("0123456789abcdef".first { c in !slotFiles.contains { $0.first == c } })
        for (prefix, word) in [(String(unused), "no key slot"), ("xyz", "not a key slot id"), ("", "not a key slot id")] {
            let r = try coffer(["key", "remove", prefix])
            XCTAssertEqual(r.code, 1, "\(prefix): \(r.stderr)")
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(word), r.stderr)
        }
        // Copies of the first slot with other labels are valid slots with other names; add them
        // until two names share their first digit.
        let original = try TreeCompare.readAll(repo.appending("keys").appending(try XCTUnwrap(slotFiles.first { $0.hasPrefix(firstID) })))
        var i = 0
        while Dictionary(grouping: slotFiles, by: { $0.first! }).values.allSatisfy({ $0.count < 2 }) {
            i += 1
            let copy = Array(String(decoding: original, as: UTF8.self).replacingOccurrences(of: "\"first\"", with: "\"copy \(i)\"").utf8)
            try writeBytes(repo.appending("keys").appending(Hex.encode(SHA256Digest.of(copy))), copy, mode: 0o600)
        }
        let shared = try XCTUnwrap(Dictionary(grouping: slotFiles, by: { $0.first! }).first { $0.value.count >= 2 }?.key)
        let before = slotFiles
        let ambiguous = try coffer(["key", "remove", String(shared)])
        XCTAssertEqual(ambiguous.code, 1, ambiguous.stderr)
        XCTAssertTrue(ambiguous.stderr.contains("matches"), ambiguous.stderr)
        XCTAssertEqual(slotFiles, before, "nothing was removed")
        for name in slotFiles where !name.hasPrefix(firstID) && !name.hasPrefix(secondID) { try ok(["key", "remove", name]) }
        XCTAssertEqual(slotFiles.count, 2)

        // Removing the slot you unlocked with is allowed while another slot remains, and says so.
        let r = try ok(["key", "remove", firstID.uppercased()])
        XCTAssertTrue(r.stdout.contains("removed key slot \(firstID)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("your passphrase"), r.stdout)
        XCTAssertEqual(try coffer(["snapshots"]).code, 12, "the removed slot's passphrase no longer opens")
        let second = try passFile("pass2", "second passphrase")
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": second])
        // …and now that one is the last.
        let again = try coffer(["key", "remove", secondID], env: ["COFFER_PASSWORD_FILE": second])
        XCTAssertEqual(again.code, 1, again.stderr)
        XCTAssertTrue(again.stderr.contains("last"), again.stderr)
        XCTAssertEqual(slotFiles.count, 1)
    }

    // MARK: - Recovery sheet

    func exportSheet(env: [String: String?] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> RawPath {
        let r = try ok(["key", "export-recovery"], env: env, file: file, line: line)
        let path = work.appending("sheet-\(Int.random(in: 0..<1_000_000)).txt")
        try writeFile(path, r.stdout, mode: 0o600)
        return path
    }

    func repositoryID(_ location: RawPath? = nil) throws -> String {
        let config = try JSONSerialization.jsonObject(with: Data(try TreeCompare.readAll((location ?? repo).appending("config")))) as? [String: Any]
        return try XCTUnwrap(config?["id"] as? String)
    }

    func testRecoverySheetRestoresAccessAfterEveryKeyIsDeleted() throws {
        let src = work.appending("src")
        try mkdirs(src.appending("sub"))
        try writeBytes(src.appending("big"), randomBytes(1_500_000, seed: 4))
        try writeFile(src.appending("sub").appending("note"), "recover me\n")
        try initRepository()
        try ok(["backup", src.description])
        try ok(["backup", src.description])

        let sheetPath = try exportSheet()
        let sheet = String(decoding: try TreeCompare.readAll(sheetPath), as: UTF8.self)
        XCTAssertTrue(sheet.contains(try repositoryID()), "the sheet names the repository id")
        XCTAssertTrue(sheet.contains(repo.description), "and its location")
        XCTAssertFalse(sheet.contains(firstPassphrase))

        for name in slotFiles { try Posix.remove(repo.appending("keys").appending(name)) }
        XCTAssertEqual(slotFiles, [])
        let locked = try coffer(["snapshots"])
        XCTAssertEqual(locked.code, 12, "no slot left, the old passphrase fails: \(locked.stderr)")
        XCTAssertTrue(locked.stderr.contains("no key slot") && locked.stderr.contains("import-recovery"), "points at the sheet: \(locked.stderr)")

        // A new machine: no catalog, no passphrase known.
        let fresh = work.appending("fresh-cache").description
        let r = try ok(["key", "import-recovery", sheetPath.description, "--kdf-memory", "1MiB"],
                       env: ["COFFER_PASSWORD_FILE": nil, "COFFER_NEW_PASSWORD": "recovered passphrase", "COFFER_CACHE_DIR": fresh])
        let id = printedID(r, after: "added key slot ")
        XCTAssertEqual(slotFiles.count, 1)
        XCTAssertTrue(slotFiles[0].hasPrefix(id))

        let newPass: [String: String?] = ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "recovered passphrase", "COFFER_CACHE_DIR": fresh]
        XCTAssertEqual(try coffer(["snapshots"]).code, 12, "the old passphrase still fails")
        XCTAssertEqual(try snapshotList(env: newPass).count, 2)
        let target = work.appending("restored")
        try ok(["restore", "latest", "--target", target.description], env: newPass)
        XCTAssertEqual(TreeCompare.differences(src, restored(src, under: target)), [])
        try ok(["check", "--read-data"], env: newPass)
        XCTAssertEqual(try keyList(newPass).first?["label"] as? String, "recovery")
    }

    func testMistypedSheetIsRejectedNamingTheLine() throws {
        try initRepository()
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("f"), "x\n")
        try ok(["backup", src.description])
        let sheet = String(decoding: try TreeCompare.readAll(try exportSheet()), as: UTF8.self)
        let before = slotFiles

        // One hex digit of key line 5 changed.
        var lines = sheet.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let i = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("    5: ") })
        var chars = Array(lines[i])
        chars[12] = chars[12] == "7" ? "8" : "7"
        let groups = lines[i].dropFirst(7).prefix(19).split(separator: " ").map(String.init)
        lines[i] = String(chars)
        let typo = lines.joined(separator: "\n")
        for viaStdin in [false, true] {
            let r: Result
            if viaStdin {
                var env = baseEnvironment
                env["COFFER_PASSWORD_FILE"] = nil
                env["COFFER_NEW_PASSWORD"] = "whatever"
                r = try run(CofferTestCase.binary, ["key", "import-recovery", "-", "--kdf-memory", "1MiB"], environment: env, stdin: typo)
            } else {
                let path = work.appending("typo.txt")
                try writeFile(path, typo, mode: 0o600)
                r = try coffer(["key", "import-recovery", path.description, "--kdf-memory", "1MiB"],
                               env: ["COFFER_PASSWORD_FILE": nil, "COFFER_NEW_PASSWORD": "whatever"])
            }
            XCTAssertEqual(r.code, 1, r.stderr)
            XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("line 5 "), "the message names the line: \(r.stderr)")
            for g in groups { XCTAssertFalse(r.stderr.contains(g), "no key material in the message: \(r.stderr)") }
            XCTAssertEqual(r.stdout, "")
            XCTAssertEqual(slotFiles, before, "nothing was written")
        }
        // The intact sheet, retyped in capitals without spaces, is accepted.
        let retyped = work.appending("retyped.txt")
        try writeFile(retyped, sheet.uppercased().replacingOccurrences(of: " ", with: ""), mode: 0o600)
        try ok(["key", "import-recovery", retyped.description, "--kdf-memory", "1MiB", "--label", "retyped"],
               env: ["COFFER_PASSWORD_FILE": nil, "COFFER_NEW_PASSWORD": "typed in"])
        try ok(["snapshots"], env: ["COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": "typed in"])
    }

    func testSheetFromAnotherRepositoryIsRejected() throws {
        try initRepository()
        let src = work.appending("src")
        try mkdirs(src)
        try writeFile(src.appending("f"), "x\n")
        try ok(["backup", src.description])
        let other = work.appending("other-repo")
        try ok(["init", "--kdf-memory", "1MiB"], env: ["COFFER_REPO": other.description])
        let otherSheet = try exportSheet(env: ["COFFER_REPO": other.description])
        let before = slotFiles
        let noPass: [String: String?] = ["COFFER_PASSWORD_FILE": nil, "COFFER_NEW_PASSWORD": "whatever"]

        let r = try coffer(["key", "import-recovery", otherSheet.description, "--kdf-memory", "1MiB"], env: noPass)
        XCTAssertEqual(r.code, 1, r.stderr)
        XCTAssertEqual(stderrLines(r).count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("belongs to repository \(try repositoryID(other).prefix(8))"), r.stderr)
        XCTAssertTrue(r.stderr.contains(repo.description), r.stderr)

        // The other sheet with this repository's id written in: the check value gives it away.
        let forged = work.appending("forged.txt")
        let text = String(decoding: try TreeCompare.readAll(otherSheet), as: UTF8.self)
        try writeFile(forged, text.replacingOccurrences(of: try repositoryID(other), with: try repositoryID()), mode: 0o600)
        let f = try coffer(["key", "import-recovery", forged.description, "--kdf-memory", "1MiB"], env: noPass)
        XCTAssertEqual(f.code, 1, f.stderr)
        XCTAssertTrue(f.stderr.contains("check value"), f.stderr)
        XCTAssertEqual(slotFiles, before, "nothing was written")

        // No repository at all: exit 10 before the sheet is even read.
        let none = try coffer(["key", "import-recovery", otherSheet.description], env: ["COFFER_REPO": work.appending("nowhere").description])
        XCTAssertEqual(none.code, 10, none.stderr)
    }

    func testExportRecoveryToFileAndTerminal() throws {
        try initRepository()
        let out = work.appending("sheet.txt")
        let r = try ok(["key", "export-recovery", "--output", out.description])
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(try Posix.lstat(out).permissions & 0o777, 0o600)
        XCTAssertTrue(String(decoding: try TreeCompare.readAll(out), as: UTF8.self).contains(try repositoryID()))
        let exists = try coffer(["key", "export-recovery", "--output", out.description])
        XCTAssertEqual(exists.code, 1, "an existing file is never overwritten: \(exists.stderr)")

        // On a terminal only with --yes (script(1) gives the command a pty).
        var env = baseEnvironment
        env["SHELL"] = "/bin/sh"
        let cmd = "\(CofferTestCase.binary) key export-recovery"
        let refused = try run("/usr/bin/script", ["-qefc", cmd, "/dev/null"], environment: env)
        XCTAssertNotEqual(refused.code, 0, refused.stdout)
        XCTAssertTrue(refused.stdout.contains("terminal"), refused.stdout)
        XCTAssertFalse(refused.stdout.contains("Check:"), refused.stdout)
        let forced = try run("/usr/bin/script", ["-qefc", cmd + " --yes", "/dev/null"], environment: env)
        XCTAssertEqual(forced.code, 0, forced.stdout)
        XCTAssertTrue(forced.stdout.contains("Check:"), forced.stdout)
    }

    func testHelpForEveryKeyCommand() throws {
        for c in [["key"], ["key", "list"], ["key", "add"], ["key", "remove"], ["key", "passwd"],
                  ["key", "export-recovery"], ["key", "import-recovery"]] {
            let r = try coffer(c + ["--help"], env: ["COFFER_REPO": nil, "COFFER_PASSWORD_FILE": nil])
            let name = (["coffer"] + c).joined(separator: " ")
            XCTAssertEqual(r.code, 0, "\(name) --help: \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("USAGE"), r.stdout)
            XCTAssertTrue(r.stdout.contains(name), "\(name) --help names the command: \(r.stdout)")
        }
        let top = try ok(["--help"], env: ["COFFER_REPO": nil])
        XCTAssertTrue(top.stdout.contains("key"), top.stdout)
    }

    // MARK: - Core dumps

    func testCoreDumpsAreDisabled() throws {
        try initRepository()
        // Raise the limit first (the test runner's may already be 0), then let coffer lower it; it
        // then waits for the sheet on standard input.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -c unlimited 2>/dev/null || ulimit -S -c 4096; exec \"$0\" key import-recovery -", CofferTestCase.binary]
        p.environment = baseEnvironment
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = Foundation.FileHandle.nullDevice
        p.standardError = Foundation.FileHandle.nullDevice
        try p.run()
        defer {
            try? input.fileHandleForWriting.close()
            p.waitUntilExit()
        }
        func coreLimit() -> String? {
            guard let text = try? String(contentsOfFile: "/proc/\(p.processIdentifier)/limits", encoding: .utf8) else { return nil }
            return text.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map {
                $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2).joined(separator: " ")
            }
        }
        // Wait for the exec'd coffer to be running (its executable is the binary), then read its limit.
        let exe = URL(fileURLWithPath: CofferTestCase.binary).resolvingSymlinksInPath().path
        XCTAssertTrue(poll(timeout: 20) { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p.processIdentifier)/exe")) == exe && coreLimit() == "0 0" },
                      "RLIMIT_CORE of the running coffer: \(coreLimit() ?? "?")")
    }
}
