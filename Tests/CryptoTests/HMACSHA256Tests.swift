import Crypto
import XCTest

/// RFC 4231 HMAC-SHA-256 test cases 1–7.
final class HMACSHA256Tests: XCTestCase {
    private let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
        (Array(repeating: 0x0b, count: 20), ascii("Hi There"),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (ascii("Jefe"), ascii("what do ya want for nothing?"),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Array(repeating: 0xaa, count: 20), Array(repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(1...25), Array(repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (Array(repeating: 0x0c, count: 20), ascii("Test With Truncation"),
         "a3b6167473100ee06e0c796c2955552b"),  // 128-bit truncation
        (Array(repeating: 0xaa, count: 131), ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (Array(repeating: 0xaa, count: 131),
         ascii("This is a test using a larger than block-size key and a larger than block-size data. "
               + "The key needs to be hashed before being used by the HMAC algorithm."),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    func testRFC4231Cases1To7() {
        for (index, testCase) in cases.enumerated() {
            let expected = hex(testCase.mac)
            let keyed = HMACSHA256(key: SecretBytes(testCase.key))
            let viaArray = keyed.authenticationCode(testCase.data)
            let viaPointer = testCase.data.withUnsafeBytes { keyed.authenticationCode($0) }
            let oneShot = HMACSHA256.authenticationCode(key: testCase.key, data: testCase.data)
            for mac in [viaArray, viaPointer, oneShot] {
                XCTAssertEqual(mac.count, 32, "case \(index + 1)")
                XCTAssertEqual(Array(mac.prefix(expected.count)), expected, "case \(index + 1)")
            }
        }
    }

    func testEmptyKeyAndData() {
        let expected = hex("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
        XCTAssertEqual(HMACSHA256.authenticationCode(key: [], data: []), expected)
        XCTAssertEqual(HMACSHA256(key: SecretBytes([])).authenticationCode([]), expected)
    }

    func testKeyedInstanceIsReusable() {
        let keyed = HMACSHA256(key: SecretBytes(ascii("Jefe")))
        let first = keyed.authenticationCode(ascii("what do ya want for nothing?"))
        _ = keyed.authenticationCode(ascii("something else"))
        XCTAssertEqual(keyed.authenticationCode(ascii("what do ya want for nothing?")), first)
    }
}
