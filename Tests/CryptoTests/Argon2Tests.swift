import Crypto
import XCTest

/// Argon2id through libargon2, against RFC 9106 §5.3.
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

    func testRefusedParameters() {
        let pw = ascii("pw"), salt = ascii("saltsalt")
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 0, memoryKiB: 64, lanes: 1, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 64, lanes: 0, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 15, lanes: 2, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: ascii("short"), iterations: 1, memoryKiB: 64, lanes: 1, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter, try Argon2id.deriveKey(password: pw, salt: salt, iterations: 1, memoryKiB: 64, lanes: 1, length: 3))
    }
}
