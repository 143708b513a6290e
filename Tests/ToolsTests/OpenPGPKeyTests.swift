import XCTest
import Foundation
import Glibc
@testable import Store

/// `coffer key add --gpg-recipient` and unlocking through gpg-agent (COFFER_GPG=1 / --gpg), with
/// a real gpg and gpg-agent in a throw-away GNUPGHOME with a short path. No network.
final class OpenPGPKeyTests: CofferTestCase {
    var gnupgHome: String!
    var otherHome: String!
    let protectedPassphrase = "open sesame 42"

    func makeHome() throws -> String {
        var buf = Array("/tmp/cg-XXXXXX".utf8CString)
        guard mkdtemp(&buf) != nil else { throw XCTSkip("mkdtemp failed") }
        let h = String(cString: buf)
        chmod(h, 0o700)
        return h
    }

    func gpg(_ args: [String], home: String) throws {
        let r = try run("/usr/bin/gpg", ["--homedir", home, "--batch"] + args)
        XCTAssertEqual(r.code, 0, "gpg \(args.joined(separator: " ")): \(r.stderr)")
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gpg") else { throw XCTSkip("gpg is not installed") }
        gnupgHome = try makeHome()
        otherHome = try makeHome()
        try writeFile(RawPath(gnupgHome + "/gpg-agent.conf"), "allow-loopback-pinentry\n")
        try gpg(["--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
                 "Coffer Test <ops@example.org>", "future-default", "default", "never"], home: gnupgHome)
        try gpg(["--pinentry-mode", "loopback", "--passphrase", protectedPassphrase, "--quick-gen-key",
                 "Locked Test <locked@example.org>", "future-default", "default", "never"], home: gnupgHome)
        // A fresh agent: no passphrase cached from key generation.
        _ = try run("/usr/bin/gpgconf", ["--homedir", gnupgHome, "--kill", "all"])
    }

    override func tearDownWithError() throws {
        for h in [gnupgHome, otherHome].compactMap({ $0 }) {
            _ = try? run("/usr/bin/gpgconf", ["--homedir", h, "--kill", "all"])
            _ = try? run("/bin/rm", ["-rf", h])
        }
        try super.tearDownWithError()
    }

    /// Environment with GNUPGHOME and without any passphrase source.
    func gpgOnly(home: String? = nil, extra: [String: String?] = [:]) -> [String: String?] {
        var e: [String: String?] = ["GNUPGHOME": home ?? gnupgHome, "COFFER_GPG": "1",
                                    "COFFER_PASSWORD_FILE": nil, "COFFER_PASSWORD": nil]
        for (k, v) in extra { e[k] = v }
        return e
    }

    func backUpSomething() throws -> RawPath {
        let src = work.appending("src")
        try mkdirs(src)
        try writeBytes(src.appending("data.bin"), randomBytes(50_000, seed: 7))
        try writeFile(src.appending("hello.txt"), "hello from gpg\n")
        try ok(["backup", src.description])
        return src
    }

    func testGpgSlotUnlocksWithoutPassphrase() throws {
        try initRepository()
        let src = try backUpSomething()
        let r = try ok(["key", "add", "--gpg-recipient", "ops@example.org", "--label", "ops"], env: ["GNUPGHOME": gnupgHome])
        XCTAssertTrue(r.stdout.contains("added OpenPGP key slot "), r.stdout)

        // The slot file: kind openpgp, recipient fingerprints, an armored message; mode 0600.
        let keys = repo.appending("keys")
        let files = entryNames(keys)
        XCTAssertEqual(files.count, 2)
        var sawOpenPGP = false
        for f in files {
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keys.appending(f).description))) as? [String: Any])
            XCTAssertEqual(try Posix.lstat(keys.appending(f)).permissions & 0o777, 0o600)
            guard json["kind"] as? String == "openpgp" else { continue }
            sawOpenPGP = true
            let recipients = try XCTUnwrap(json["recipients"] as? [String])
            XCTAssertEqual(recipients.count, 1)
            XCTAssertEqual(recipients[0].count, 40)
            XCTAssertTrue((json["wrapped_key"] as? String ?? "").hasPrefix("-----BEGIN PGP MESSAGE-----"))
            XCTAssertEqual(json["label"] as? String, "ops")
        }
        XCTAssertTrue(sawOpenPGP)

        // key list shows the kind and recipient.
        let list = try ok(["key", "list", "--json"], env: ["GNUPGHOME": gnupgHome])
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let pgpRow = try XCTUnwrap(rows.first { $0["kind"] as? String == "openpgp" })
        XCTAssertEqual((pgpRow["recipients"] as? [String])?.count, 1)
        XCTAssertEqual(pgpRow["read_capable"] as? Bool, true)
        let table = try ok(["key", "list"], env: ["GNUPGHOME": gnupgHome])
        XCTAssertTrue(table.stdout.contains("openpgp"), table.stdout)

        // No passphrase variables at all: COFFER_GPG=1 opens through gpg-agent.
        let snaps = try ok(["snapshots", "--json"], env: gpgOnly())
        XCTAssertTrue(snaps.stdout.contains("\"id\""), snaps.stdout)
        let out = work.appending("out")
        try ok(["restore", "latest", "--target", out.description], env: gpgOnly())
        let restored = try String(contentsOfFile: out.description + src.description + "/hello.txt", encoding: .utf8)
        XCTAssertEqual(restored, "hello from gpg\n")

        // --gpg does the same as COFFER_GPG=1; key list marks the openpgp slot as the one that opened.
        var e = gpgOnly()
        e["COFFER_GPG"] = nil
        let viaFlag = try ok(["key", "list", "--json", "--gpg"], env: e)
        let rows2 = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(viaFlag.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(rows2.first { $0["current"] as? Bool == true }?["kind"] as? String, "openpgp")

        // With the OpenPGP slot present the passphrase slot may go, but then not the OpenPGP one.
        let passID = try XCTUnwrap(rows2.first { $0["kind"] as? String == "passphrase" }?["id"] as? String)
        let pgpID = try XCTUnwrap(pgpRow["id"] as? String)
        try ok(["key", "remove", passID], env: gpgOnly())
        let refused = try coffer(["key", "remove", pgpID], env: gpgOnly())
        XCTAssertNotEqual(refused.code, 0)
        XCTAssertTrue(refused.stderr.contains("last slot"), refused.stderr)
    }

    func testProtectedKeyWithLoopbackPassphrase() throws {
        try initRepository()
        _ = try backUpSomething()
        try ok(["key", "add", "--gpg-recipient", "locked@example.org"], env: ["GNUPGHOME": gnupgHome])
        try ok(["snapshots"], env: gpgOnly(extra: ["COFFER_GPG_PASSPHRASE": protectedPassphrase]))
        let out = work.appending("out")
        try ok(["restore", "latest", "--target", out.description],
               env: gpgOnly(extra: ["COFFER_GPG_PASSPHRASE": protectedPassphrase]))
        // A wrong loopback passphrase: one clear line, exit 12.
        _ = try run("/usr/bin/gpgconf", ["--homedir", gnupgHome, "--kill", "all"])
        let bad = try coffer(["snapshots"], env: gpgOnly(extra: ["COFFER_GPG_PASSPHRASE": "wrong"]))
        XCTAssertEqual(bad.code, 12, bad.stderr)
    }

    func testWithoutSecretKeyExits12() throws {
        try initRepository()
        _ = try backUpSomething()
        try ok(["key", "add", "--gpg-recipient", "ops@example.org"], env: ["GNUPGHOME": gnupgHome])
        let r = try coffer(["snapshots"], env: gpgOnly(home: otherHome))
        XCTAssertEqual(r.code, 12, r.stderr)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("OpenPGP"), r.stderr)

        // No OpenPGP slot at all: also exit 12, and a hint.
        try ok(["init", "--kdf-memory", "1MiB", "--repo", work.appending("repo2").description])
        let none = try coffer(["snapshots", "--repo", work.appending("repo2").description], env: gpgOnly())
        XCTAssertEqual(none.code, 12, none.stderr)
        XCTAssertTrue(none.stderr.contains("--gpg-recipient"), none.stderr)

        // An unknown recipient is refused by name, and nothing is written.
        let before = entryNames(repo.appending("keys")).count
        let unknown = try coffer(["key", "add", "--gpg-recipient", "nobody@example.net"], env: ["GNUPGHOME": gnupgHome])
        XCTAssertNotEqual(unknown.code, 0)
        XCTAssertTrue(unknown.stderr.contains("nobody@example.net"), unknown.stderr)
        XCTAssertEqual(entryNames(repo.appending("keys")).count, before)
    }

    func testRotationReMakesOpenPGPSlotsAndTheyReadOldAndNewData() throws {
        try initRepository()
        let src = try backUpSomething()
        try ok(["key", "add", "--gpg-recipient", "ops@example.org", "--label", "ops"], env: ["GNUPGHOME": gnupgHome])
        // Rotate with the passphrase; the OpenPGP slot is re-encrypted for generation 1.
        let r = try ok(["key", "rotate", "--json"], env: ["GNUPGHOME": gnupgHome])
        let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((out["new_slots"] as? [String])?.count, 2, "the passphrase slot and the OpenPGP slot")
        try writeFile(src.appending("after.txt"), "written after the rotation\n")
        try ok(["backup", src.description])
        let keys = repo.appending("keys")
        let gpgSlots = try entryNames(keys).compactMap { f -> [String: Any]? in
            let j = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: keys.appending(f).description))) as? [String: Any]
            return j?["kind"] as? String == "openpgp" ? j : nil
        }
        XCTAssertEqual(gpgSlots.count, 1)
        XCTAssertEqual(gpgSlots.first?["generation"] as? Int, 1)
        // gpg-agent alone opens generation 1 and, through the record, everything before it.
        let env = gpgOnly(extra: ["COFFER_CACHE_DIR": work.appending("gpg-cache").description])
        let list = try ok(["snapshots", "--json"], env: env)
        let snaps = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(snaps.map { $0["key_generation"] as? Int }, [0, 1])
        for s in snaps {
            let id = try XCTUnwrap(s["id"] as? String)
            let target = work.appending("r-\(id.prefix(8))")
            try ok(["restore", id, "--target", target.description], env: env)
            XCTAssertEqual(try String(contentsOfFile: restored(src, under: target).appending("hello.txt").description, encoding: .utf8),
                           "hello from gpg\n")
        }
    }
}
