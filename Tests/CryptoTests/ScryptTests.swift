import Crypto
import XCTest

/// RFC 7914 §12 test vectors.
final class ScryptTests: XCTestCase {
    func testRFC7914Vector1() throws {
        XCTAssertEqual(try Scrypt.deriveKey(password: [], salt: [], n: 16, r: 1, p: 1, length: 64), hex("""
            77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442
            fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906
            """))
    }

    func testRFC7914Vector2() throws {
        XCTAssertEqual(try Scrypt.deriveKey(password: ascii("password"), salt: ascii("NaCl"), n: 1024, r: 8, p: 16,
                                            length: 64), hex("""
            fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162
            2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640
            """))
    }

    func testRFC7914Vector3() throws {
        XCTAssertEqual(try Scrypt.deriveKey(password: ascii("pleaseletmein"), salt: ascii("SodiumChloride"),
                                            n: 16384, r: 8, p: 1, length: 64), hex("""
            7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2
            d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887
            """))
    }

    /// N = 2^20, r = 8: needs 1 GiB and several seconds.
    func testRFC7914Vector4() throws {
        XCTAssertEqual(try Scrypt.deriveKey(password: ascii("pleaseletmein"), salt: ascii("SodiumChloride"),
                                            n: 1_048_576, r: 8, p: 1, length: 64), hex("""
            2101cb9b6a511aaeaddbbe09cf70f881ec568d574a2ffd4dabe5ee9820adaa47
            8e56fd8f4ba5d09ffa1c6d927c40f4c337304049e8a952fbcbf45c6fa77a41a4
            """))
    }

    func testInvalidParameters() {
        let password = ascii("pw"), salt = ascii("salt")
        for n: UInt64 in [0, 1, 3, 1000] {
            XCTAssertThrowsCryptoError(.invalidParameter,
                                       try Scrypt.deriveKey(password: password, salt: salt, n: n, r: 1, p: 1, length: 32))
        }
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try Scrypt.deriveKey(password: password, salt: salt, n: 16, r: 0, p: 1, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try Scrypt.deriveKey(password: password, salt: salt, n: 16, r: 1, p: 0, length: 32))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try Scrypt.deriveKey(password: password, salt: salt, n: 16, r: 1, p: 1, length: 0))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try Scrypt.deriveKey(password: password, salt: salt, n: 1 << 62, r: 1 << 60, p: 1,
                                                        length: 32))
    }
}
