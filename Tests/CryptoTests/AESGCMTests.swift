import Crypto
import XCTest

final class AESGCMTests: XCTestCase {
    func testWycheproofVectors() throws {
        let vectors = try loadWycheproof("aes_gcm_test.json")
        var valid = 0, invalid = 0
        for test in vectors.allTests {
            let key = hex(test.key!), nonce = hex(test.iv!), aad = hex(test.aad!)
            let msg = hex(test.msg!), ct = hex(test.ct!), tag = hex(test.tag!)
            let expected = ct + tag
            if test.isValid {
                valid += 1
                XCTAssertEqual(try AESGCM.seal(key: key, nonce: nonce, plaintext: msg, aad: aad, tagLength: tag.count),
                               expected, test.label)
                XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, sealed: expected, aad: aad, tagLength: tag.count),
                               msg, test.label)
            } else {
                XCTAssertTrue(test.isInvalid, test.label)
                invalid += 1
                XCTAssertThrowsError(try AESGCM.open(key: key, nonce: nonce, sealed: expected, aad: aad,
                                                     tagLength: tag.count), test.label)
                if let sealed = try? AESGCM.seal(key: key, nonce: nonce, plaintext: msg, aad: aad, tagLength: tag.count) {
                    XCTAssertNotEqual(sealed, expected, test.label)
                }
                if test.flags.contains("ModifiedTag") {
                    XCTAssertThrowsCryptoError(.authenticationFailed,
                        try AESGCM.open(key: key, nonce: nonce, sealed: expected, aad: aad, tagLength: tag.count),
                        test.label)
                }
                if nonce.isEmpty {
                    XCTAssertThrowsCryptoError(.invalidParameter,
                        try AESGCM.seal(key: key, nonce: nonce, plaintext: msg, aad: aad), test.label)
                }
            }
        }
        XCTAssertEqual(valid, 229)
        XCTAssertEqual(invalid, 87)
    }

    /// GMAC is GCM with an empty plaintext: every valid Wycheproof vector without a message
    /// gives the tag of its AAD (one of them, AES-256 with 6 bytes of AAD, has a non-empty AAD).
    func testGMACMatchesWycheproofVectorsWithoutPlaintext() throws {
        var checked = 0, withAAD = 0
        for test in try loadWycheproof("aes_gcm_test.json").allTests where test.isValid && test.msg!.isEmpty {
            let aad = hex(test.aad!), tag = hex(test.tag!)
            let got = try aad.withUnsafeBytes {
                try AESGCM.gmac(key: hex(test.key!), nonce: hex(test.iv!), data: $0, tagLength: tag.count)
            }
            XCTAssertEqual(got, tag, test.label)
            checked += 1
            if !aad.isEmpty { withAAD += 1 }
        }
        XCTAssertGreaterThanOrEqual(checked, 5)
        XCTAssertEqual(withAAD, 1)
        // A flipped bit anywhere in the data, or another nonce, gives another tag.
        let data = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let base = try data.withUnsafeBytes { try AESGCM.gmac(key: key, nonce: nonce, data: $0) }
        XCTAssertEqual(base.count, 16)
        for i in [0, 1000, 4095] {
            var changed = data
            changed[i] ^= 0x01
            XCTAssertNotEqual(try changed.withUnsafeBytes { try AESGCM.gmac(key: key, nonce: nonce, data: $0) }, base, "byte \(i)")
        }
        var otherNonce = nonce
        otherNonce[0] ^= 1
        XCTAssertNotEqual(try data.withUnsafeBytes { try AESGCM.gmac(key: key, nonce: otherNonce, data: $0) }, base)
    }

    private let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    private let nonce = hex("cafebabefacedbaddecaf888")
    private let plaintext = ascii("attack at dawn, bring snacks")
    private let aad = ascii("header v1")

    func testRoundTripAllKeySizes() throws {
        for keyLength in [16, 24, 32] {
            let key = Array(self.key.prefix(keyLength))
            let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
            XCTAssertEqual(sealed.count, plaintext.count + 16)
            XCTAssertNotEqual(Array(sealed.prefix(plaintext.count)), plaintext)
            XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: aad), plaintext)
        }
    }

    func testTamperedCiphertextAndTagFailAuthentication() throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        for index in [0, plaintext.count - 1, plaintext.count, sealed.count - 1] {
            var tampered = sealed
            tampered[index] ^= 0x01
            XCTAssertThrowsCryptoError(.authenticationFailed,
                                       try AESGCM.open(key: key, nonce: nonce, sealed: tampered, aad: aad),
                                       "flipped byte \(index)")
        }
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: key, nonce: nonce, sealed: Array(sealed.dropLast()), aad: aad))
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: key, nonce: nonce, sealed: Array(sealed.prefix(15)), aad: aad))
        var otherNonce = nonce
        otherNonce[0] ^= 0x80
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: key, nonce: otherNonce, sealed: sealed, aad: aad))
        var otherKey = key
        otherKey[31] ^= 0x01
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: otherKey, nonce: nonce, sealed: sealed, aad: aad))
    }

    func testWrongAADFailsAuthentication() throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: ascii("header v2")))
        XCTAssertThrowsCryptoError(.authenticationFailed,
                                   try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: []))
    }

    func testEmptyPlaintextAndAAD() throws {
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: [], aad: [])
        XCTAssertEqual(sealed.count, 16)
        XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: []), [])
    }

    func testTruncatedTagsArePrefixesOfTheFullTag() throws {
        let full = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        for tagLength in [4, 8, 12, 13, 15, 16] {
            let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, tagLength: tagLength)
            XCTAssertEqual(sealed, Array(full.prefix(plaintext.count + tagLength)))
            XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: aad, tagLength: tagLength),
                           plaintext)
            var tampered = sealed
            tampered[tampered.count - 1] ^= 0x40
            XCTAssertThrowsCryptoError(.authenticationFailed,
                try AESGCM.open(key: key, nonce: nonce, sealed: tampered, aad: aad, tagLength: tagLength))
        }
    }

    func testInvalidParameters() {
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try AESGCM.seal(key: Array(key.prefix(15)), nonce: nonce, plaintext: plaintext, aad: aad))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try AESGCM.open(key: Array(key.prefix(20)), nonce: nonce, sealed: plaintext, aad: aad))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try AESGCM.seal(key: key, nonce: [], plaintext: plaintext, aad: aad))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try AESGCM.open(key: key, nonce: [], sealed: Array(repeating: 0, count: 32), aad: aad))
        for tagLength in [0, 3, 17] {
            XCTAssertThrowsCryptoError(.invalidParameter,
                try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad, tagLength: tagLength))
            XCTAssertThrowsCryptoError(.invalidParameter,
                try AESGCM.open(key: key, nonce: nonce, sealed: Array(repeating: 0, count: 40), aad: aad,
                                tagLength: tagLength))
        }
    }

    func testSealIntoAppendsAfterExistingBytes() throws {
        let expected = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
        var output: [UInt8] = [0xAA, 0xBB]
        try plaintext.withUnsafeBytes { pt in
            try aad.withUnsafeBytes { aad in
                try AESGCM.seal(key: key, nonce: nonce, plaintext: pt, aad: aad, into: &output)
            }
        }
        XCTAssertEqual(output, [0xAA, 0xBB] + expected)

        // Reused empty buffer with spare capacity.
        var reused = [UInt8]()
        reused.reserveCapacity(1024)
        try plaintext.withUnsafeBytes { pt in
            try aad.withUnsafeBytes { aad in
                try AESGCM.seal(key: key, nonce: nonce, plaintext: pt, aad: aad, into: &reused)
            }
        }
        XCTAssertEqual(reused, expected)

        // A failing call leaves the output untouched.
        XCTAssertThrowsError(try plaintext.withUnsafeBytes { pt in
            try aad.withUnsafeBytes { aad in
                try AESGCM.seal(key: key, nonce: nonce, plaintext: pt, aad: aad, tagLength: 2, into: &output)
            }
        })
        XCTAssertEqual(output, [0xAA, 0xBB] + expected)
    }

    func testPointerAPIsMatchArrayAPIs() throws {
        let message = (0..<(1 << 20) + 3).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: message, aad: aad)
        let opened = try sealed.withUnsafeBytes { sealed in
            try aad.withUnsafeBytes { aad in
                try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: aad)
            }
        }
        XCTAssertEqual(opened, message)
    }

    func testSealingPartsEqualsSealingTheirConcatenation() throws {
        let message = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let expected = try AESGCM.seal(key: key, nonce: nonce, plaintext: message, aad: aad)
        // Splits inside and on 16-byte blocks, empty parts, a one-byte tail (the blob flag).
        let splits: [[Int]] = [[], [1], [15, 16, 17], [16, 32], [0, 0, 50_000], [100_002], [7, 7, 99_000]]
        for cuts in splits {
            var bounds = [0] + cuts + [message.count]
            bounds.sort()
            var output: [UInt8] = [0x01]
            try message.withUnsafeBytes { all in
                let parts = zip(bounds, bounds.dropFirst()).map { UnsafeRawBufferPointer(rebasing: all[$0..<$1]) }
                try aad.withUnsafeBytes { aad in
                    try AESGCM.seal(key: key, nonce: nonce, plaintextParts: parts, aad: aad, into: &output)
                }
            }
            XCTAssertEqual(output, [0x01] + expected, "split at \(cuts)")
        }
    }

    func testLongNoncesRoundTrip() throws {
        for length in [1, 12, 13, 128, 129, 200, 1000] {
            let nonce = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            let sealed = try AESGCM.seal(key: key, nonce: nonce, plaintext: plaintext, aad: aad)
            XCTAssertEqual(try AESGCM.open(key: key, nonce: nonce, sealed: sealed, aad: aad), plaintext, "nonce \(length)")
            var otherNonce = nonce
            otherNonce[length - 1] ^= 1
            XCTAssertThrowsCryptoError(.authenticationFailed,
                                       try AESGCM.open(key: key, nonce: otherNonce, sealed: sealed, aad: aad))
        }
    }
}
