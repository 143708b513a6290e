import Crypto
import XCTest

final class SecretBytesTests: XCTestCase {
    func testCountAndCopyRoundTrip() {
        let bytes: [UInt8] = Array(0...40)
        let secret = SecretBytes(bytes)
        XCTAssertEqual(secret.count, 41)
        XCTAssertEqual(secret.copyBytes(), bytes)
        XCTAssertEqual(secret.withUnsafeBytes { Array($0) }, bytes)
    }

    func testEmpty() {
        let secret = SecretBytes([])
        XCTAssertEqual(secret.count, 0)
        XCTAssertEqual(secret.copyBytes(), [])
    }

    func testRandom() {
        let a = SecretBytes.random(count: 32), b = SecretBytes.random(count: 32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a.copyBytes(), b.copyBytes())
        XCTAssertEqual(SecretBytes.random(count: 0).count, 0)
    }

    func testSecureZeroKeepsCount() {
        var bytes: [UInt8] = Array(repeating: 0xFF, count: 64)
        secureZero(&bytes)
        XCTAssertEqual(bytes, Array(repeating: 0, count: 64))
        var empty: [UInt8] = []
        secureZero(&empty)
        XCTAssertEqual(empty, [])
    }

    func testSecureRandom() {
        XCTAssertEqual(SecureRandom.bytes(count: 0), [])
        let a = SecureRandom.bytes(count: 32), b = SecureRandom.bytes(count: 32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
    }

    func testCryptoErrorDescriptions() {
        XCTAssertTrue(CryptoError.authenticationFailed.description.contains("authenticationFailed"))
        XCTAssertTrue(CryptoError.invalidParameter("bad key").description.contains("bad key"))
        XCTAssertEqual(CryptoError.openssl("x"), CryptoError.openssl("x"))
        XCTAssertNotEqual(CryptoError.openssl("x"), CryptoError.authenticationFailed)
    }
}
