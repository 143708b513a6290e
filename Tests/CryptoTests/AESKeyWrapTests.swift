import Crypto
import XCTest

final class AESKeyWrapTests: XCTestCase {
    func testWycheproofVectors() throws {
        let vectors = try loadWycheproof("aes_wrap_test.json")
        var valid = 0, invalid = 0
        for test in vectors.allTests {
            let kek = hex(test.key!), msg = hex(test.msg!), ct = hex(test.ct!)
            if test.isValid {
                valid += 1
                XCTAssertEqual(try AESKeyWrap.wrap(kek: kek, plaintext: msg), ct, test.label)
                XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: ct), msg, test.label)
            } else if test.isInvalid {
                invalid += 1
                XCTAssertThrowsError(try AESKeyWrap.unwrap(kek: kek, wrapped: ct), test.label)
                if let wrapped = try? AESKeyWrap.wrap(kek: kek, plaintext: msg) {
                    XCTAssertNotEqual(wrapped, ct, test.label)
                }
                if test.flags.contains("ModifiedIv") {
                    XCTAssertThrowsCryptoError(.authenticationFailed, try AESKeyWrap.unwrap(kek: kek, wrapped: ct),
                                               test.label)
                }
            } else {
                // "acceptable" (8-byte keys): either reject, or behave exactly like RFC 3394 §2.
                if let unwrapped = try? AESKeyWrap.unwrap(kek: kek, wrapped: ct) {
                    XCTAssertEqual(unwrapped, msg, test.label)
                }
                if let wrapped = try? AESKeyWrap.wrap(kek: kek, plaintext: msg) {
                    XCTAssertEqual(wrapped, ct, test.label)
                }
            }
        }
        XCTAssertEqual(valid, 36)
        XCTAssertEqual(invalid, 126)
    }

    /// RFC 3394 §4.1: 128 bits of key data with a 128-bit KEK.
    func testRFC3394Section4_1() throws {
        let kek = hex("000102030405060708090A0B0C0D0E0F")
        let keyData = hex("00112233445566778899AABBCCDDEEFF")
        let expected = hex("1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5")
        XCTAssertEqual(try AESKeyWrap.wrap(kek: kek, plaintext: keyData), expected)
        XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: expected), keyData)
    }

    /// RFC 3394 §4.6: 256 bits of key data with a 256-bit KEK.
    func testRFC3394Section4_6() throws {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
        let keyData = hex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
        let expected = hex("28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21")
        XCTAssertEqual(try AESKeyWrap.wrap(kek: kek, plaintext: keyData), expected)
        XCTAssertEqual(try AESKeyWrap.unwrap(kek: kek, wrapped: expected), keyData)
    }

    func testTamperingAndWrongKEKFailAuthentication() throws {
        let kek = hex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
        let wrapped = try AESKeyWrap.wrap(kek: kek, plaintext: Array(repeating: 0x42, count: 32))
        for index in wrapped.indices {
            var tampered = wrapped
            tampered[index] ^= 0x10
            XCTAssertThrowsCryptoError(.authenticationFailed, try AESKeyWrap.unwrap(kek: kek, wrapped: tampered))
        }
        var otherKEK = kek
        otherKEK[0] ^= 1
        XCTAssertThrowsCryptoError(.authenticationFailed, try AESKeyWrap.unwrap(kek: otherKEK, wrapped: wrapped))
        XCTAssertThrowsCryptoError(.authenticationFailed, try AESKeyWrap.unwrap(kek: kek, wrapped: Array(wrapped.dropLast())))
        XCTAssertThrowsCryptoError(.authenticationFailed, try AESKeyWrap.unwrap(kek: kek, wrapped: Array(wrapped.prefix(16))))
    }

    func testInvalidParameters() {
        let kek = Array(repeating: UInt8(7), count: 16)
        XCTAssertThrowsCryptoError(.invalidParameter, try AESKeyWrap.wrap(kek: Array(kek.prefix(15)), plaintext: kek))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try AESKeyWrap.unwrap(kek: Array(kek.prefix(8)), wrapped: Array(repeating: 0, count: 24)))
        for length in [0, 8, 15, 17, 20] {
            XCTAssertThrowsCryptoError(.invalidParameter,
                                       try AESKeyWrap.wrap(kek: kek, plaintext: Array(repeating: 1, count: length)))
        }
    }
}
