@testable import Crypto
import XCTest

/// Argon2id through libargon2, against RFC 9106 §5.3, and through libsodium (one lane, 16-byte
/// salt), against libargon2 on the same inputs.
final class Argon2Tests: XCTestCase {
    /// RFC 9106 §5.3: password 32 × 0x01, salt 16 × 0x02, secret 8 × 0x03, associated data
    /// 12 × 0x04, t = 3, m = 32 KiB, p = 4, 32-byte tag.
    func testRFC9106Section5_3() throws {
        let tag = try Argon2id.deriveKey(password: [UInt8](repeating: 1, count: 32), salt: [UInt8](repeating: 2, count: 16),
                                         iterations: 3, memoryKiB: 32, lanes: 4, length: 32,
                                         secret: [UInt8](repeating: 3, count: 8), associatedData: [UInt8](repeating: 4, count: 12))
        XCTAssertEqual(tag, hex("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"))
    }

    func testEveryInputChangesTheKey() throws {
        func derive(_ password: String = "pw", _ salt: String = "saltsaltsalt", t: UInt32 = 1, m: UInt32 = 64,
                    p: UInt32 = 2, length: Int = 32) throws -> [UInt8] {
            try Argon2id.deriveKey(password: ascii(password), salt: ascii(salt), iterations: t, memoryKiB: m, lanes: p,
                                   length: length)
        }
        let base = try derive()
        XCTAssertEqual(try derive(), base, "deterministic")
        XCTAssertEqual(base.count, 32)
        for other in [try derive("pw2"), try derive("pw", "saltsaltsalu"), try derive(t: 2), try derive(m: 128),
                      try derive(p: 1), Array(try derive(length: 64).prefix(32))] {
            XCTAssertNotEqual(other, base)
        }
    }

    /// The libsodium path (what new passphrase slots use) and the reference library agree on
    /// every one-lane input shape it takes: passwords of 1..200 bytes, t = 1..4, m from the 8 KiB
    /// minimum up, tags of 16..64 bytes.
    func testLibsodiumAgreesWithTheReferenceLibrary() throws {
        for (i, (t, m, length)) in [(UInt32(1), UInt32(8), 16), (2, 64, 32), (3, 1024, 32), (4, 333, 64), (3, 4096, 32)].enumerated() {
            let password = [UInt8]((0..<[1, 7, 32, 64, 200][i]).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
            let salt = [UInt8]((0..<16).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) })
            let sodium = try SodiumLibrary.argon2id(password: password, salt: salt, iterations: t, memoryKiB: m, length: length)
            let reference = try Argon2Library.argon2id(password: password, salt: salt, secret: [], associatedData: [],
                                                       iterations: t, memoryKiB: m, lanes: 1, threads: 1, length: length)
            XCTAssertEqual(sodium, reference, "t=\(t) m=\(m) length=\(length)")
            XCTAssertEqual(try Argon2id.deriveKey(password: password, salt: salt, iterations: t, memoryKiB: m, lanes: 1,
                                                  length: length), reference)
        }
        // A fixed value, so that both libraries changing together would still be caught:
        // password "password", salt "somesaltsomesalt", t = 2, m = 64 KiB, p = 1, as computed by
        // the reference `argon2` command (echo -n password | argon2 somesaltsomesalt -id -t 2 -k 64 -p 1 -l 32 -r).
        XCTAssertEqual(try Argon2id.deriveKey(password: ascii("password"), salt: ascii("somesaltsomesalt"), iterations: 2,
                                              memoryKiB: 64, lanes: 1, length: 32),
                       hex("1a98fba8e6394425c9bdc333a9c750aaf811df070f5fb4a5788e1cf4db5793a1"))
    }

    func testRefusedParameters() {
        let pw = ascii("pw"), salt = ascii("saltsalt")
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 0, memoryKiB: 64, lanes: 1, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 64, lanes: 0, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 15, lanes: 2, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: ascii("short"), iterations: 1, memoryKiB: 64, lanes: 1, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 64, lanes: 1, length: 3))
    }
}
