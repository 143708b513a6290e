import Crypto
import XCTest

final class X25519Tests: XCTestCase {
    func testWycheproofVectors() throws {
        let vectors = try loadWycheproof("x25519_test.json")
        var computed = 0, rejected = 0
        for group in vectors.testGroups {
            XCTAssertEqual(group.curve, "curve25519")
            for test in group.tests {
                let privateKey = hex(test.privateKey!), publicKey = hex(test.publicKey!), shared = hex(test.shared!)
                let zeroShared = shared.allSatisfy { $0 == 0 }
                // The file flags exactly the all-zero results as ZeroSharedSecret (low-order points).
                XCTAssertEqual(zeroShared, test.flags.contains("ZeroSharedSecret"), test.label)
                if test.isInvalid || zeroShared {
                    XCTAssertThrowsCryptoError(.invalidParameter,
                        try X25519.sharedSecret(privateKey: privateKey, publicKey: publicKey), test.label)
                    rejected += 1
                } else {
                    // valid, and acceptable ones with a non-zero result (twist points, non-canonical
                    // encodings): RFC 7748 defines the result, so it must match.
                    XCTAssertEqual(try X25519.sharedSecret(privateKey: privateKey, publicKey: publicKey), shared,
                                   test.label)
                    computed += 1
                }
            }
        }
        XCTAssertEqual(computed + rejected, 518)
        XCTAssertEqual(rejected, 31)
    }

    /// RFC 7748 §6.1.
    func testRFC7748AliceAndBob() throws {
        let alicePrivate = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let alicePublic = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        let bobPrivate = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        let bobPublic = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        XCTAssertEqual(try X25519.publicKey(privateKey: alicePrivate), alicePublic)
        XCTAssertEqual(try X25519.publicKey(privateKey: bobPrivate), bobPublic)
        XCTAssertEqual(try X25519.sharedSecret(privateKey: alicePrivate, publicKey: bobPublic), shared)
        XCTAssertEqual(try X25519.sharedSecret(privateKey: bobPrivate, publicKey: alicePublic), shared)
    }

    func testGeneratedKeysAgree() throws {
        let a = X25519.generatePrivateKey(), b = X25519.generatePrivateKey()
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
        let ab = try X25519.sharedSecret(privateKey: a, publicKey: X25519.publicKey(privateKey: b))
        let ba = try X25519.sharedSecret(privateKey: b, publicKey: X25519.publicKey(privateKey: a))
        XCTAssertEqual(ab, ba)
        XCTAssertEqual(ab.count, 32)
    }

    func testInvalidLengthsAndLowOrderPoint() {
        let key = X25519.generatePrivateKey()
        XCTAssertThrowsCryptoError(.invalidParameter, try X25519.publicKey(privateKey: Array(key.prefix(31))))
        XCTAssertThrowsCryptoError(.invalidParameter, try X25519.sharedSecret(privateKey: key, publicKey: key + [0]))
        XCTAssertThrowsCryptoError(.invalidParameter, try X25519.sharedSecret(privateKey: [], publicKey: key))
        // u = 0 and u = 1 are low-order points: the shared secret is all zeros.
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try X25519.sharedSecret(privateKey: key, publicKey: Array(repeating: 0, count: 32)))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try X25519.sharedSecret(privateKey: key, publicKey: [1] + Array(repeating: 0, count: 31)))
    }
}
