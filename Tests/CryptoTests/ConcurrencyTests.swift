import Crypto
import Foundation
import XCTest

/// The hot-path primitives are documented thread-safe: hammer them from several threads at once.
final class ConcurrencyTests: XCTestCase {
    func testConcurrentSealOpenAndHMAC() throws {
        let key = SecureRandom.bytes(count: 32)
        let hmac = HMACSHA256(key: SecretBytes(key))
        let chunks = (0..<16).map { index in
            (0..<(64 * 1024 + index)).map { UInt8(truncatingIfNeeded: $0 &* (index + 3)) }
        }
        let nonces = (0..<16).map { _ in SecureRandom.bytes(count: 12) }
        let expectedSealed = try (0..<16).map { try AESGCM.seal(key: key, nonce: nonces[$0], plaintext: chunks[$0], aad: []) }
        let expectedMACs = chunks.map { HMACSHA256.authenticationCode(key: key, data: $0) }

        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 64) { iteration in
            let index = iteration % 16
            do {
                let sealed = try AESGCM.seal(key: key, nonce: nonces[index], plaintext: chunks[index], aad: [])
                let opened = try AESGCM.open(key: key, nonce: nonces[index], sealed: sealed, aad: [])
                if sealed != expectedSealed[index] || opened != chunks[index] { failures.add("gcm \(iteration)") }
            } catch {
                failures.add("gcm \(iteration): \(error)")
            }
            if hmac.authenticationCode(chunks[index]) != expectedMACs[index] { failures.add("hmac \(iteration)") }
        }
        XCTAssertEqual(failures.all, [])
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.lock(); messages.append(message); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
}
