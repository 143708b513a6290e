import Foundation
import XCTest
import Crypto

/// Hex helpers for inline vectors.
func hex(_ string: String) -> [UInt8] {
    let digits = Array(string.filter { !$0.isWhitespace }.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex string")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: preconditionFailure("bad hex digit \(c)")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

func ascii(_ string: String) -> [UInt8] { Array(string.utf8) }

/// One Wycheproof test case; only the fields a given file uses are present.
struct WycheproofTest: Decodable {
    let tcId: Int
    let comment: String?
    let flags: [String]
    let result: String
    // AEAD / key wrap
    let key: String?
    let iv: String?
    let aad: String?
    let msg: String?
    let ct: String?
    let tag: String?
    // HKDF
    let ikm: String?
    let salt: String?
    let info: String?
    let size: Int?
    let okm: String?
    // XDH
    let publicKey: String?
    let privateKey: String?
    let shared: String?

    enum CodingKeys: String, CodingKey {
        case tcId, comment, flags, result, key, iv, aad, msg, ct, tag, ikm, salt, info, size, okm, shared
        case publicKey = "public"
        case privateKey = "private"
    }

    var isValid: Bool { result == "valid" }
    var isInvalid: Bool { result == "invalid" }
    var isAcceptable: Bool { result == "acceptable" }
    var label: String { "tcId \(tcId) [\(result)] \(flags) \(comment ?? "")" }
}

struct WycheproofGroup: Decodable {
    let curve: String?
    let tests: [WycheproofTest]
}

struct WycheproofFile: Decodable {
    let algorithm: String
    let numberOfTests: Int
    let testGroups: [WycheproofGroup]

    var allTests: [WycheproofTest] { testGroups.flatMap(\.tests) }
}

enum VectorError: Error { case missing(String) }

/// Loads `../shared/vectors/NAME` relative to the package root (the nearest ancestor of this file
/// holding Package.swift). A missing file fails the calling test.
func loadWycheproof(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> WycheproofFile {
    var directory = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
        let parent = directory.deletingLastPathComponent()
        guard parent.path != directory.path else {
            XCTFail("package root not found above \(#filePath)", file: file, line: line)
            throw VectorError.missing(name)
        }
        directory = parent
    }
    let url = directory.deletingLastPathComponent().appendingPathComponent("shared/vectors/\(name)")
    guard let data = FileManager.default.contents(atPath: url.path) else {
        XCTFail("test vectors missing: \(url.path)", file: file, line: line)
        throw VectorError.missing(url.path)
    }
    let vectors = try JSONDecoder().decode(WycheproofFile.self, from: data)
    XCTAssertEqual(vectors.allTests.count, vectors.numberOfTests, "\(name): numberOfTests mismatch",
                   file: file, line: line)
    return vectors
}

/// Asserts that `body` throws exactly `expected`.
func XCTAssertThrowsCryptoError<T>(_ expected: CryptoErrorKind, _ body: @autoclosure () throws -> T,
                                   _ message: @autoclosure () -> String = "",
                                   file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try body(), message(), file: file, line: line) { error in
        guard let cryptoError = error as? CryptoError else {
            return XCTFail("not a CryptoError: \(error) \(message())", file: file, line: line)
        }
        XCTAssertEqual(CryptoErrorKind(cryptoError), expected, "\(cryptoError) \(message())", file: file, line: line)
    }
}

/// CryptoError without payloads, for assertions.
enum CryptoErrorKind: Equatable {
    case authenticationFailed, invalidParameter, openssl

    init(_ error: CryptoError) {
        switch error {
        case .authenticationFailed: self = .authenticationFailed
        case .invalidParameter: self = .invalidParameter
        case .openssl: self = .openssl
        }
    }
}

