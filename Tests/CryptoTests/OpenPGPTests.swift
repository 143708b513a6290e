import XCTest
import Foundation
import Glibc
@testable import Crypto

/// gpgme round trips against a real gpg and gpg-agent in a throw-away GNUPGHOME (short path:
/// the agent's socket path must stay under 108 bytes). No network, no keyserver.
final class OpenPGPTests: XCTestCase {
    var home: String!
    var otherHome: String!
    let protectedPassphrase = "open sesame 42"

    static func mkdtempDir(_ prefix: String) throws -> String {
        var buf = Array("/tmp/\(prefix)XXXXXX".utf8CString)
        guard mkdtemp(&buf) != nil else { throw XCTSkip("mkdtemp failed") }
        return String(cString: buf)
    }

    @discardableResult
    static func run(_ exe: String, _ args: [String], home: String) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["--homedir", home] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A GNUPGHOME with an unprotected key for ops@example.org and a passphrase-protected key for
    /// locked@example.org; gpg-agent allows loopback pinentry. The agent is stopped afterwards, so
    /// no passphrase stays cached from key generation.
    static func makeHome() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gpg") else { throw XCTSkip("gpg is not installed") }
        let h = try mkdtempDir("cg")
        chmod(h, 0o700)
        try "allow-loopback-pinentry\n".write(toFile: h + "/gpg-agent.conf", atomically: true, encoding: .utf8)
        for (uid, pass) in [("Coffer Test <ops@example.org>", ""), ("Locked Test <locked@example.org>", "open sesame 42")] {
            let (code, out) = try run("/usr/bin/gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", pass,
                                                       "--quick-gen-key", uid, "future-default", "default", "never"], home: h)
            guard code == 0 else { throw NSError(domain: "gpg", code: Int(code), userInfo: [NSLocalizedDescriptionKey: out]) }
        }
        try run("/usr/bin/gpgconf", ["--kill", "all"], home: h)
        return h
    }

    override func setUpWithError() throws {
        home = try OpenPGPTests.makeHome()
        otherHome = try OpenPGPTests.mkdtempDir("cg")
        chmod(otherHome, 0o700)
        setenv("GNUPGHOME", home, 1)
        unsetenv("COFFER_GPG_PASSPHRASE")
    }

    override func tearDownWithError() throws {
        unsetenv("GNUPGHOME")
        unsetenv("COFFER_GPG_PASSPHRASE")
        for h in [home, otherHome].compactMap({ $0 }) {
            _ = try? OpenPGPTests.run("/usr/bin/gpgconf", ["--kill", "all"], home: h)
            try? FileManager.default.removeItem(atPath: h)
        }
    }

    func testRoundTripWithUnprotectedKey() throws {
        let secret = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let message = try OpenPGP.encrypt(secret, recipients: ["ops@example.org"])
        XCTAssertTrue(String(decoding: message, as: UTF8.self).hasPrefix("-----BEGIN PGP MESSAGE-----"), "ASCII-armored")
        XCTAssertFalse(message.count < 64)
        XCTAssertEqual(try OpenPGP.decrypt(message), secret)
    }

    func testFingerprints() throws {
        let fprs = try OpenPGP.fingerprints(of: ["ops@example.org", "locked@example.org"])
        XCTAssertEqual(fprs.count, 2)
        for f in fprs { XCTAssertEqual(f.count, 40, f); XCTAssertTrue(f.allSatisfy(\.isHexDigit), f) }
        XCTAssertNotEqual(fprs[0], fprs[1])
        // A fingerprint resolves to itself.
        XCTAssertEqual(try OpenPGP.fingerprints(of: [fprs[0]]), [fprs[0]])
    }

    func testUnknownRecipientIsNamed() throws {
        XCTAssertThrowsError(try OpenPGP.encrypt([1, 2, 3], recipients: ["ops@example.org", "nobody@example.net"])) { e in
            let g = e as? GPGError
            XCTAssertNotNil(g, "\(e)")
            XCTAssertTrue(g?.message.contains("nobody@example.net") ?? false, g?.message ?? "")
        }
    }

    func testLoopbackPassphraseForProtectedKey() throws {
        let secret: [UInt8] = Array("the master secret".utf8)
        let message = try OpenPGP.encrypt(secret, recipients: ["locked@example.org"])
        setenv("COFFER_GPG_PASSPHRASE", "not it", 1)
        XCTAssertThrowsError(try OpenPGP.decrypt(message), "a wrong passphrase fails (and is not retried forever)")
        setenv("COFFER_GPG_PASSPHRASE", protectedPassphrase, 1)
        XCTAssertEqual(try OpenPGP.decrypt(message), secret)
    }

    func testDecryptWithoutSecretKeyFails() throws {
        let message = try OpenPGP.encrypt([9, 8, 7], recipients: ["ops@example.org"])
        setenv("GNUPGHOME", otherHome, 1)
        XCTAssertThrowsError(try OpenPGP.decrypt(message)) { e in
            let g = e as? GPGError
            XCTAssertNotNil(g, "\(e)")
            XCTAssertTrue(g?.isNoSecretKey ?? false, "\(e)")
        }
        XCTAssertThrowsError(try OpenPGP.encrypt([1], recipients: ["ops@example.org"]), "the other keyring has no public key either")
    }
}
