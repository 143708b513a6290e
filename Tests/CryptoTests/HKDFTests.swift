import Crypto
import XCTest

final class HKDFTests: XCTestCase {
    func testWycheproofVectors() throws {
        let vectors = try loadWycheproof("hkdf_sha256_test.json")
        var valid = 0, invalid = 0
        for test in vectors.allTests {
            let derive = {
                try HKDF.sha256(inputKey: hex(test.ikm!), salt: hex(test.salt!), info: hex(test.info!),
                                outputLength: test.size!)
            }
            if test.isValid {
                valid += 1
                XCTAssertEqual(try derive(), hex(test.okm!), test.label)
            } else {
                XCTAssertTrue(test.isInvalid, test.label)
                invalid += 1
                XCTAssertThrowsCryptoError(.invalidParameter, try derive(), test.label)
            }
        }
        XCTAssertEqual(valid, 83)
        XCTAssertEqual(invalid, 3)
    }

    func testOutputLengthBounds() throws {
        XCTAssertEqual(try HKDF.sha256(inputKey: [1, 2, 3], salt: [], info: [], outputLength: 8160).count, 8160)
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try HKDF.sha256(inputKey: [1, 2, 3], salt: [], info: [], outputLength: 8161))
        XCTAssertThrowsCryptoError(.invalidParameter,
                                   try HKDF.sha256(inputKey: [1, 2, 3], salt: [], info: [], outputLength: 0))
    }

    func testEmptySaltEqualsZeroSalt() throws {
        let ikm = ascii("input keying material")
        XCTAssertEqual(try HKDF.sha256(inputKey: ikm, salt: [], info: ascii("ctx"), outputLength: 42),
                       try HKDF.sha256(inputKey: ikm, salt: Array(repeating: 0, count: 32), info: ascii("ctx"),
                                       outputLength: 42))
    }
}
