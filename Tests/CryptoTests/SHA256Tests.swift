import Crypto
import XCTest

/// FIPS 180-2 / NIST CSRC SHA-256 examples.
final class SHA256Tests: XCTestCase {
    private let examples: [([UInt8], String)] = [
        (ascii("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (Array(repeating: UInt8(ascii: "a"), count: 1_000_000),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    func testKnownAnswers() {
        for (message, digest) in examples {
            XCTAssertEqual(SHA256.hash(message), hex(digest))
            XCTAssertEqual(message.withUnsafeBytes { SHA256.hash($0) }, hex(digest))
        }
    }

    func testStreamingMatchesOneShot() {
        let message = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        let hasher = SHA256Hasher()
        var offset = 0, step = 1
        while offset < message.count {
            let end = min(offset + step, message.count)
            if step % 2 == 0 {
                hasher.update(Array(message[offset..<end]))
            } else {
                message.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
            }
            offset = end
            step = step * 3 + 1
        }
        XCTAssertEqual(hasher.finalize(), SHA256.hash(message))
    }

    func testFinalizeResetsTheHasher() {
        let hasher = SHA256Hasher()
        hasher.update(ascii("ab"))
        hasher.update(ascii("c"))
        XCTAssertEqual(hasher.finalize(), hex(examples[0].1))
        XCTAssertEqual(hasher.finalize(), hex(examples[1].1))
        hasher.update(ascii("abc"))
        XCTAssertEqual(hasher.finalize(), hex(examples[0].1))
    }
}
